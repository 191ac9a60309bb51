//! Holds of the best available seats: the core's side of [`domain::best_seats`].
//!
//! Policy:
//! - A pick reads the seat blocks' committed states in memory (the writers'); a block without a
//!   running writer is read from the store once, a few rows at a time and best rows first, and
//!   handed to its writer. Each block's free seats are worked out once per version (and again
//!   when one of its holds expires).
//! - Seats picked for requests still in flight in this process are claimed: later picks do not
//!   offer them, so a crowd asking at once spreads over the hall instead of colliding on the best
//!   seat. A claim ends when its request is answered; by then a held seat is in its writer's state.
//! - A pick is only a proposal: the hold takes the ordinary path (allowance, then the writers,
//!   which decide). When a seat was taken first elsewhere (another process, a hold of named
//!   seats), the request picks again from the fresher state, up to [`PICK_ATTEMPTS`] times; only
//!   then is the buyer told the seats are not available.
//! - Each attempt has its own hold id derived from the request's, so a re-run under the same
//!   idempotency key finds the attempts made before and answers (or finishes) the one that held.
//! - Memory: claims live as long as their requests; free seats are cached per block, for a
//!   bounded number of events ([`crate::picker`]).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use domain::{BestSeats, CustomerId, EventId, HoldId, HoldStatus, KnownEvent, SeatBlock};

use crate::context::RequestContext;
use crate::error::CommandError;
use crate::persistence::load_with_version;
use crate::picker::{Claim, Known, Picked};
use crate::place_hold::rerun_answer;
use crate::service::BookingService;
use crate::views::HoldView;

/// How many picks one request may try before answering that the seats are not available.
pub const PICK_ATTEMPTS: u32 = 3;

impl BookingService {
    /// Holds the best available seats for `ask` (see the module policy).
    #[tracing::instrument(name = "hold_best_seats", skip_all, fields(event_id = %event.event_id(), %customer_id, quantity = ask.quantity))]
    pub(crate) async fn run_hold_best(
        &self,
        event: &KnownEvent,
        customer_id: CustomerId,
        ask: BestSeats,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError> {
        event.layout.check_best(&ask)?;
        let max = event.definition.max_seats_per_customer;
        if ask.quantity > max {
            return Err(CommandError::TooManySeats {
                max,
                requested: ask.quantity,
            });
        }
        let _admitted = self.admission.enter(event.event_id())?;
        let mut refused = None;
        for attempt in 0..PICK_ATTEMPTS {
            let hold_id = HoldId(ctx.new_id(&format!("best hold\n{customer_id}\n{attempt}")));
            if ctx.id_seed.is_some() {
                // A re-run: an attempt made before either failed (try the next) or stands.
                match self.locate(hold_id).await {
                    Ok(located) => {
                        let view = self.located_hold_view(&located, Utc::now()).await?;
                        if view.status == HoldStatus::Failed {
                            continue;
                        }
                        if view.status.is_final() {
                            return rerun_answer(view);
                        }
                        let seats = located.entry.change.seats.clone();
                        return self
                            .place_hold(event, customer_id, seats, hold_id, ctx)
                            .await;
                    }
                    Err(CommandError::HoldNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            let claim = self.pick_best(event, &ask).await?;
            let seats = claim.seats.clone();
            match self
                .place_hold(event, customer_id.clone(), seats, hold_id, ctx)
                .await
            {
                Err(e @ CommandError::SeatsUnavailable(_)) => {
                    metrics::counter!("seatgrid_best_seats_repicks_total").increment(1);
                    tracing::debug!(attempt, error = %e, "picked seats were taken first; picking again");
                    refused = Some(e);
                }
                answered => return answered,
            }
        }
        Err(refused.unwrap_or(CommandError::Contention))
    }

    /// Picks and claims the best free seats, reading blocks not in memory as the pick needs them.
    async fn pick_best(&self, event: &KnownEvent, ask: &BestSeats) -> Result<Claim, CommandError> {
        let writers = self.store.block_writers();
        let mut read: HashMap<u32, Known> = HashMap::new();
        loop {
            match self.picker.pick(event, ask, writers, &read)? {
                Picked::Claimed(claim) => return Ok(claim),
                Picked::NotEnough { free } => {
                    return Err(CommandError::NotEnoughSeats {
                        requested: ask.quantity,
                        free,
                        together: ask.together,
                    })
                }
                // Each round reads blocks it had not, so the loop ends.
                Picked::Missing(missing) => {
                    for block in missing {
                        let id = event.block_id(block);
                        let (state, version) =
                            load_with_version::<SeatBlock>(self.store.pool(), &id).await?;
                        let state = Arc::new(state);
                        writers.seed(&id, state.clone(), version);
                        read.insert(block, (state, version));
                    }
                }
            }
        }
    }

    /// Seats claimed by best-available requests in flight for `event_id`.
    pub fn best_seats_claimed(&self, event_id: EventId) -> usize {
        self.picker.claimed(event_id)
    }
}
