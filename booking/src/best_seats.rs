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
//! - Memory: claims live as long as their requests; free seats are cached per block, for at most
//!   [`CACHED_EVENTS`] events at once.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use domain::{
    BestPick, BestSeats, CustomerId, EventId, HoldId, HoldStatus, KnownEvent, SeatBlock, SeatId,
    SeatRef,
};

use crate::context::RequestContext;
use crate::error::CommandError;
use crate::persistence::load_with_version;
use crate::place_hold::rerun_answer;
use crate::service::BookingService;
use crate::views::HoldView;
use crate::writers::{CommittedCell, Writers};

/// How many picks one request may try before answering that the seats are not available.
pub const PICK_ATTEMPTS: u32 = 3;
/// Events whose free seats are cached at once; past it, events nobody is picking in are dropped.
const CACHED_EVENTS: usize = 256;

/// What a buyer asks to hold: seats by name, or the best available.
#[derive(Debug, Clone, PartialEq)]
pub enum SeatChoice {
    Named(Vec<SeatRef>),
    Best(BestSeats),
}

impl From<Vec<SeatRef>> for SeatChoice {
    fn from(refs: Vec<SeatRef>) -> Self {
        Self::Named(refs)
    }
}

/// The process's picks in progress and its cache of free seats, per event.
#[derive(Default)]
pub(crate) struct Picker {
    events: Mutex<HashMap<EventId, Arc<Mutex<EventPicks>>>>,
}

#[derive(Default)]
struct EventPicks {
    /// Seats offered to requests still in flight.
    claimed: BTreeSet<u32>,
    /// Per block index: free seats as of a version.
    blocks: Vec<Option<BlockFree>>,
    /// Per block index: its writer's committed state, read without the writers' registry.
    cells: Vec<Option<CommittedCell<SeatBlock>>>,
}

struct BlockFree {
    version: usize,
    /// When a hold among its seats expires (the flags are stale from then on).
    changes_at: Option<DateTime<Utc>>,
    free: Vec<bool>,
}

/// Seats picked for a request in flight; offered to nobody else until it is dropped.
pub(crate) struct Claim {
    picks: Arc<Mutex<EventPicks>>,
    pub(crate) seats: Vec<SeatId>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut picks = self.picks.lock().expect("picks lock");
        for seat in &self.seats {
            picks.claimed.remove(&seat.0);
        }
    }
}

/// A block's committed state and its version.
type Known = (Arc<SeatBlock>, usize);

impl Picker {
    fn event(&self, event_id: EventId) -> Arc<Mutex<EventPicks>> {
        let mut events = self.events.lock().expect("picker lock");
        if !events.contains_key(&event_id) && events.len() >= CACHED_EVENTS {
            events.retain(|_, picks| Arc::strong_count(picks) > 1);
        }
        events.entry(event_id).or_default().clone()
    }

    /// Seats claimed now in `event_id` (for tests and metrics).
    pub(crate) fn claimed(&self, event_id: EventId) -> usize {
        let events = self.events.lock().expect("picker lock");
        events
            .get(&event_id)
            .map_or(0, |p| p.lock().expect("picks lock").claimed.len())
    }
}

impl EventPicks {
    /// One pick against the blocks' states in memory (the writers', else `read`), minus the
    /// claims; and the blocks it lacked.
    fn pick(
        &mut self,
        event: &KnownEvent,
        ask: &BestSeats,
        writers: &Writers<SeatBlock>,
        read: &HashMap<u32, Known>,
        now: DateTime<Utc>,
    ) -> (Result<BestPick, domain::LayoutError>, Vec<u32>) {
        let layout = &event.layout;
        let blocks = layout.block_count() as usize;
        self.blocks.resize_with(blocks, || None);
        self.cells.resize_with(blocks, || None);
        let Self {
            claimed,
            blocks,
            cells,
        } = self;
        let mut known = |block: u32| -> Option<Known> {
            let cell = &mut cells[block as usize];
            if let Some(c) = cell.as_ref().and_then(CommittedCell::get) {
                return Some((c.state, c.version));
            }
            *cell = writers.committed_cell(&event.block_id(block));
            match cell.as_ref().and_then(CommittedCell::get) {
                Some(c) => Some((c.state, c.version)),
                None => read.get(&block).cloned(),
            }
        };
        let mut missing = Vec::new();
        let picked = layout.best_seats(ask, &mut |seats: Range<u32>, free: &mut Vec<bool>| {
            let mut complete = true;
            let Some(first) = layout.block_of(SeatId(seats.start)) else {
                return false;
            };
            for block in first..layout.block_count() {
                let range = layout.block_seats(block);
                if range.start >= seats.end {
                    break;
                }
                match block_free(&mut blocks[block as usize], range, known(block), now) {
                    Some(flags) => free.extend_from_slice(flags),
                    None => {
                        missing.push(block);
                        complete = false;
                    }
                }
            }
            if complete {
                for seat in claimed.range(seats.clone()) {
                    free[(seat - seats.start) as usize] = false;
                }
            }
            complete
        });
        (picked, missing)
    }
}

/// The free seats of a block, from the cache while its version and holds are unchanged.
fn block_free(
    cached: &mut Option<BlockFree>,
    seats: Range<u32>,
    known: Option<Known>,
    now: DateTime<Utc>,
) -> Option<&[bool]> {
    let (state, version) = known?;
    let fresh = cached
        .as_ref()
        .is_some_and(|c| c.version == version && c.changes_at.is_none_or(|t| now < t));
    if !fresh {
        let (free, changes_at) = state.availability(seats, now);
        *cached = Some(BlockFree {
            version,
            changes_at,
            free,
        });
    }
    cached.as_ref().map(|c| c.free.as_slice())
}

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
        let picks = self.picker.event(event.event_id());
        let writers = self.store.block_writers();
        let mut read: HashMap<u32, Known> = HashMap::new();
        loop {
            let (picked, missing) = {
                let mut guard = picks.lock().expect("picks lock");
                let (picked, missing) = guard.pick(event, ask, writers, &read, Utc::now());
                if let Ok(BestPick::Seats(seats)) = &picked {
                    guard.claimed.extend(seats.iter().map(|s| s.0));
                }
                (picked, missing)
            };
            match picked? {
                BestPick::Seats(seats) => return Ok(Claim { picks, seats }),
                BestPick::NotEnough { free } => {
                    return Err(CommandError::NotEnoughSeats {
                        requested: ask.quantity,
                        free,
                        together: ask.together,
                    })
                }
                // Each round reads blocks it had not, so the loop ends.
                BestPick::Unknown => {
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
