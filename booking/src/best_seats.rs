//! Holds of the best available seats: the core's side of [`domain::best_seats`].
//!
//! Policy:
//! - A pick reads the seat blocks' committed states in memory (the writers'). When it needs a
//!   block no writer holds, every such block of the event is read from the store in one
//!   statement (a few for a big hall) and handed to its writer; one request of an event reads at
//!   a time, and the others find what it read in memory ([`crate::picker`]). Each block's free seats are worked out once per version (and again
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
use crate::persistence::load_many_with_version;
use crate::picker::{Claim, Known, Picked};
use crate::place_hold::rerun_answer;
use crate::service::BookingService;
use crate::views::HoldView;

/// Blocks read from the store in one statement when a pick finds blocks no writer holds.
const READ_CHUNK: usize = 100;

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
                // Read in turns (see `crate::picker`). A pick asks only for the rows that could
                // beat what it found, so a crowd moves into unread rows one at a time; reading
                // them one at a time made each request wait its turn behind the crowd once per
                // row (measured: ~20 turns a request, 2,000 buyers). So the turn reads every block
                // of the event that no writer holds, in one statement. What it read stays in
                // `read` for this request, so the next round knows those blocks and the loop ends.
                Picked::Missing => {
                    let turn = self.picker.read_turn(event.event_id());
                    read.extend(turn.take(self.read_unheld_blocks(event)).await?);
                }
            }
        }
    }

    /// Reads every block of `event` that no writer holds (none when the request before did) and
    /// hands them to their writers.
    async fn read_unheld_blocks(
        &self,
        event: &KnownEvent,
    ) -> Result<Vec<(u32, Known)>, CommandError> {
        let writers = self.store.block_writers();
        let unread: Vec<(u32, String)> = (0..event.layout.block_count())
            .map(|block| (block, event.block_id(block)))
            .filter(|(_, id)| writers.committed(id).is_none())
            .collect();
        let mut loaded = HashMap::new();
        for chunk in unread.chunks(READ_CHUNK) {
            let ids: Vec<String> = chunk.iter().map(|(_, id)| id.clone()).collect();
            loaded.extend(load_many_with_version::<SeatBlock>(self.store.pool(), &ids).await?);
        }
        self.cold_reads.count(unread.len() as u64, "pick");
        Ok(unread
            .into_iter()
            .map(|(block, id)| {
                // A block without events is a new block: the default state at version 0.
                let (state, version) = loaded.remove(&id).unwrap_or_default();
                let state = Arc::new(state);
                writers.seed(&id, state.clone(), version);
                (block, (state, version))
            })
            .collect())
    }

    /// Seats claimed by best-available requests in flight for `event_id`.
    pub fn best_seats_claimed(&self, event_id: EventId) -> usize {
        self.picker.claimed(event_id)
    }
}
