//! Reconciling a customer's allowance with the seat blocks: a booking whose server stopped between
//! committing the allowance and booking every block left seats counted against the customer (and
//! perhaps some blocks booked) that the customer never heard were booked.
//!
//! Policy: such a booking is taken back (the blocks that booked record `BookingUndone`, the
//! allowance is returned with `BookingFailed`), never finished: its caller never heard "booked".
//! It is found two ways:
//! - by the sweeper, right after it records a hold's expiry in a block: from then on that block
//!   refuses to book the hold, so a booking still running will fail there and undo itself, and
//!   one whose server stopped never finishes ([`BookingService::settle_lapsed_booking`]);
//! - when a hold is refused for the customer's limit: the allowance's committed holds that expired
//!   more than [`GRACE`] ago are checked, and the hold is tried again once if any was taken back.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use domain::{
    AllowanceEntry, AllowanceState, CustomerAllowance, HoldId, HoldProgress, KnownEvent, SeatBlock,
};

use crate::error::CommandError;
use crate::service::BookingService;

/// How long after a hold's expiry a committed, unbooked allowance is taken as abandoned.
pub const GRACE: Duration = Duration::minutes(2);

impl BookingService {
    /// Returns the allowance of abandoned bookings; whether anything was returned.
    pub(crate) async fn reconcile_allowance(
        &self,
        event: &KnownEvent,
        allowance_id: &str,
        meta: &HashMap<String, String>,
    ) -> Result<bool, CommandError> {
        let Some(allowance) = self
            .store
            .load::<CustomerAllowance>(&[allowance_id.to_owned()])
            .await?
            .remove(allowance_id)
        else {
            return Ok(false);
        };
        let committed: Vec<AllowanceEntry> = allowance
            .committed_expired_before(Utc::now() - GRACE)
            .cloned()
            .collect();
        let mut returned = false;
        for entry in committed {
            returned |= self.take_back_if_unfinished(event, &entry, meta).await?;
        }
        Ok(returned)
    }

    /// Called by the sweeper for a hold whose expiry it just recorded: a committed booking of it
    /// that did not book every block is taken back.
    pub(crate) async fn settle_lapsed_booking(
        &self,
        hold_id: HoldId,
        meta: &HashMap<String, String>,
    ) -> Result<(), CommandError> {
        let located = match self.locate(hold_id).await {
            Ok(located) => located,
            Err(CommandError::HoldNotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if located.entry.state == AllowanceState::Committed {
            self.take_back_if_unfinished(&located.event, &located.entry, meta)
                .await?;
        }
        Ok(())
    }

    /// Takes back a committed booking unless every block of its hold booked it; whether it did.
    async fn take_back_if_unfinished(
        &self,
        event: &KnownEvent,
        entry: &AllowanceEntry,
        meta: &HashMap<String, String>,
    ) -> Result<bool, CommandError> {
        let hold_id = entry.change.hold_id;
        let blocks = self.store.load_for_hold::<SeatBlock>(hold_id.0).await?;
        let booked_in = |b: u32| {
            blocks
                .get(&event.block_id(b))
                .and_then(|blk| blk.hold(hold_id))
                .is_some_and(|h| h.progress == HoldProgress::Booked)
        };
        let parts: Vec<u32> = event.by_block(&entry.change.seats).into_keys().collect();
        let booked: Vec<u32> = parts.iter().copied().filter(|b| booked_in(*b)).collect();
        if booked.len() == parts.len() {
            return Ok(false);
        }
        tracing::warn!(%hold_id, booked = booked.len(), "a booking that never finished is taken back");
        self.take_back_booking(event, entry, &booked, meta).await?;
        Ok(true)
    }
}
