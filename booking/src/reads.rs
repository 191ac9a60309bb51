//! Reads served straight from the event store: an event, a strongly consistent seat map, a hold.
//!
//! Policy: these reads are never behind (they replay the seat blocks now); the projected read
//! models answer the same questions faster and milliseconds later. A hold's status is derived by
//! [`domain::HoldStatus::from_blocks`], the one rule for it on this side.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::{
    AllowanceEntry, CustomerAllowance, EventId, HoldId, HoldProgress, HoldStatus, KnownEvent,
    SeatBlock, SeatId,
};

use crate::error::CommandError;
use crate::identity::Caller;
use crate::service::BookingService;
use crate::views::{hold_view, EventView, HoldView, SeatMapView};

/// A hold located through its customer's allowance.
pub(crate) struct LocatedHold {
    pub event: Arc<KnownEvent>,
    pub allowance_id: String,
    pub entry: AllowanceEntry,
}

impl BookingService {
    pub(crate) async fn run_event(&self, event_id: EventId) -> Result<EventView, CommandError> {
        Ok(EventView::of(&*self.load_known_event(event_id).await?))
    }

    /// A seat map the read side projected, in the same view as [`Self::run_seat_map`].
    pub(crate) async fn run_projected_seat_map(
        &self,
        event_id: EventId,
        seats: String,
    ) -> Result<SeatMapView, CommandError> {
        self.load_known_event(event_id).await?;
        Ok(SeatMapView::new(event_id.0, seats, "eventual"))
    }

    /// Every seat's status at this instant, computed from the seat blocks in the event store:
    /// never behind.
    pub(crate) async fn run_seat_map(
        &self,
        event_id: EventId,
    ) -> Result<SeatMapView, CommandError> {
        let known = self.load_known_event(event_id).await?;
        let ids: Vec<String> = (0..known.layout.block_count())
            .map(|i| known.block_id(i))
            .collect();
        let blocks = self.store.load::<SeatBlock>(&ids).await?;
        let now = Utc::now();
        let empty = SeatBlock::default();
        let mut seats = String::with_capacity(known.layout.seat_count() as usize);
        for (index, id) in ids.iter().enumerate() {
            let block = blocks.get(id).unwrap_or(&empty);
            for seat in known.layout.block_seats(index as u32) {
                seats.push(block.seat_status(SeatId(seat), now).code() as char);
            }
        }
        Ok(SeatMapView::new(event_id.0, seats, "strong"))
    }

    /// A hold for its customer or the manager of its event; anyone else is refused.
    pub(crate) async fn run_hold(
        &self,
        hold_id: HoldId,
        caller: &Caller,
    ) -> Result<HoldView, CommandError> {
        let located = self.locate(hold_id).await?;
        let (customer, event) = (&located.entry.change.customer_id, &located.event.definition);
        if !caller.may_read_hold(customer, event) {
            return Err(CommandError::NotHoldOwner(hold_id));
        }
        self.located_hold_view(&located, Utc::now()).await
    }

    /// Finds a hold through its customer's allowance, from the hold's own events (exact however
    /// old the hold and long the allowance's history).
    pub(crate) async fn locate(&self, hold_id: HoldId) -> Result<LocatedHold, CommandError> {
        let (allowance_id, allowance) = self
            .store
            .load_for_hold::<CustomerAllowance>(hold_id.0)
            .await?
            .into_iter()
            .next()
            .ok_or(CommandError::HoldNotFound(hold_id))?;
        let entry = allowance
            .entry(hold_id)
            .cloned()
            .ok_or(CommandError::HoldNotFound(hold_id))?;
        let event = self.load_known_event(entry.change.event_id).await?;
        Ok(LocatedHold {
            event,
            allowance_id,
            entry,
        })
    }

    pub(crate) async fn located_hold_view(
        &self,
        located: &LocatedHold,
        now: DateTime<Utc>,
    ) -> Result<HoldView, CommandError> {
        let change = &located.entry.change;
        let block_ids: Vec<String> = located
            .event
            .by_block(&change.seats)
            .keys()
            .map(|b| located.event.block_id(*b))
            .collect();
        let blocks = self
            .store
            .load_for_hold::<SeatBlock>(change.hold_id.0)
            .await?;
        let progress: Option<Vec<HoldProgress>> = block_ids
            .iter()
            .map(|id| {
                blocks
                    .get(id)
                    .and_then(|b| b.hold(change.hold_id))
                    .map(|h| h.progress_at(now))
            })
            .collect();
        let status = HoldStatus::from_blocks(
            progress.as_deref(),
            located.entry.state,
            change.expires_at,
            now,
        );
        Ok(hold_view(
            &located.event,
            change.hold_id,
            &change.customer_id,
            &change.seats,
            change.expires_at,
            status,
        ))
    }
}
