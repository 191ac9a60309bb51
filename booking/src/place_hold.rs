//! Placing a hold: check the seats, reserve the customer's allowance, take the seats block by
//! block, and give everything back if any block refuses (see the policy of [`crate::service`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use domain::SeatChoice;
use domain::{
    AllowanceError, CustomerAllowance, CustomerAllowanceCommand, CustomerId, EventId, HoldId,
    KnownEvent, ReturnReason, SeatBlock, SeatBlockCommand, SeatBlockError, SeatId, SeatRef,
    SeatStatus,
};

use crate::context::RequestContext;
use crate::error::CommandError;
use crate::persistence::load_with_version;
use crate::service::BookingService;
use crate::store::StoreError;
use crate::views::{hold_view, seat_views, HoldView};
use domain::HoldStatus;

/// Checks a hold request's seats against the event and resolves them to seat ids: at least one,
/// at most the per-customer limit, every one in the layout, none twice.
pub fn resolve_seats(event: &KnownEvent, refs: &[SeatRef]) -> Result<Vec<SeatId>, CommandError> {
    if refs.is_empty() {
        return Err(CommandError::NoSeats);
    }
    let max = event.definition.max_seats_per_customer;
    if refs.len() > max as usize {
        return Err(CommandError::TooManySeats {
            max,
            requested: refs.len() as u32,
        });
    }
    let seats = event.layout.resolve(refs)?;
    let mut seen = HashSet::new();
    let duplicates: Vec<SeatId> = seats.iter().copied().filter(|s| !seen.insert(*s)).collect();
    if !duplicates.is_empty() {
        return Err(CommandError::DuplicateSeats(seat_views(event, &duplicates)));
    }
    Ok(seats)
}

/// What a re-run of a hold answers: the hold as it is, or the refusal if it never took effect.
pub(crate) fn rerun_answer(view: HoldView) -> Result<HoldView, CommandError> {
    match view.status {
        HoldStatus::Failed => Err(CommandError::HoldFailed(HoldId(view.hold_id))),
        _ => Ok(view),
    }
}

impl BookingService {
    #[tracing::instrument(name = "hold_seats", skip_all, fields(%event_id, %customer_id, correlation_id = %ctx.correlation_id))]
    pub(crate) async fn run_hold_seats(
        &self,
        event_id: EventId,
        customer_id: CustomerId,
        wanted: SeatChoice,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError> {
        let event = self.load_known_event(event_id).await?;
        let seats = match wanted {
            SeatChoice::Named(refs) => resolve_seats(&event, &refs)?,
            SeatChoice::Best(ask) => {
                return self.run_hold_best(&event, customer_id, ask, ctx).await
            }
        };
        let _admitted = self.admission.enter(event_id)?;
        let hold_id = HoldId(ctx.new_id(&format!("hold\n{customer_id}")));
        self.place_hold(&event, customer_id, seats, hold_id, ctx)
            .await
    }

    /// Places hold `hold_id` of resolved `seats` (or finishes it, or answers it, when a re-run
    /// finds it placed before).
    pub(crate) async fn place_hold(
        &self,
        event: &KnownEvent,
        customer_id: CustomerId,
        seats: Vec<SeatId>,
        hold_id: HoldId,
        ctx: &RequestContext,
    ) -> Result<HoldView, CommandError> {
        let event_id = event.event_id();
        let now = Utc::now();
        let expires_at = now + Duration::seconds(i64::from(event.definition.hold_seconds));

        // An idempotency key's run may be a re-run of a hold placed before (after a crash or a
        // 5xx). The hold's own events say so, however long ago it closed (its blocks keep few
        // closed holds): a closed one is answered as it is; an open one is finished below.
        let earlier = match ctx.id_seed {
            Some(_) => match self.locate(hold_id).await {
                Ok(located) => Some(located),
                Err(CommandError::HoldNotFound(_)) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        if let Some(located) = &earlier {
            let view = self.located_hold_view(located, now).await?;
            if view.status.is_final() {
                return rerun_answer(view);
            }
        }
        // Cheap early answer for the common loser of a flash sale: seats already taken are refused
        // after one read, before anything is written. The appends below still decide.
        let rerun = self.refuse_taken_seats(event, hold_id, &seats, now).await?;
        let allowance_id = CustomerAllowance::aggregate_id(event_id, &customer_id);
        let meta = ctx.metadata("HoldSeats", Some(&customer_id));
        let mut blocks = event.by_block(&seats).into_iter();
        let (first, first_seats) = blocks.next().expect("a hold has seats");
        let hold = |block_seats: Vec<SeatId>| SeatBlockCommand::HoldSeats {
            event_id,
            hold_id,
            customer_id: customer_id.clone(),
            seats: block_seats,
            expires_at,
            now: Utc::now(),
        };
        // The reservation rides with the first block's events: one transaction ([`crate::linked`]).
        let mut taken = Vec::new();
        let (mut attempts, mut reconciled) = (0, false);
        let carried = loop {
            attempts += 1;
            let reserve = CustomerAllowanceCommand::Reserve {
                event_id,
                customer_id: customer_id.clone(),
                hold_id,
                seats: seats.clone(),
                expires_at,
                limit: event.definition.max_seats_per_customer,
                now: Utc::now(),
            };
            let riding = self
                .store
                .allowance_writers()
                .execute_riding(&allowance_id, reserve, meta.clone())
                .map_err(allowance_error)?;
            let (rider, answer) = match riding.decided().await {
                Ok(rode) => rode,
                // Reserved before (a re-run): the blocks follow as they are.
                Err(Ok(())) => break false,
                Err(Err(e @ StoreError::Rejected(AllowanceError::LimitExceeded { .. })))
                    if !reconciled =>
                {
                    // Seats of a booking that never finished may be counted: give them back, try
                    // once more.
                    reconciled = true;
                    match self
                        .reconcile_allowance(event, &allowance_id, &meta)
                        .await?
                    {
                        true => continue,
                        false => return Err(allowance_error(e)),
                    }
                }
                Err(Err(e)) => return Err(allowance_error(e)),
            };
            let result = self
                .store
                .block_writers()
                .execute_carrying(
                    &event.block_id(first),
                    hold(first_seats.clone()),
                    meta.clone(),
                    rider,
                )
                .await;
            let _ = answer.get().await;
            match result {
                Ok(()) => {
                    taken.push(first);
                    break true;
                }
                // The reservation's version was taken (another process, or a writer that assumed
                // the allowance new): nothing was written; its writer reloads.
                Err(StoreError::Contention(_)) if attempts < RESERVE_ATTEMPTS => {}
                // Nothing of the hold was written (or, if the outcome is unknown, both or
                // neither): nothing to give back.
                Err(e) => return Err(block_error(event, e)),
            }
        };
        // The first block too when the reservation was there before (nothing carried).
        let uncarried = (!carried).then_some((first, first_seats));
        for (block, block_seats) in uncarried.into_iter().chain(blocks) {
            let result = self
                .store
                .block_writers()
                .execute(&event.block_id(block), hold(block_seats), meta.clone())
                .await;
            let error = match result {
                Ok(()) => {
                    taken.push(block);
                    continue;
                }
                Err(e) => block_error(event, e),
            };
            self.undo_hold(event, hold_id, &customer_id, &taken, &allowance_id, ctx)
                .await;
            return Err(error);
        }
        if rerun {
            // A re-run of a hold its blocks already had: the appends above were no-ops, so answer
            // with the hold as it is, with its own expiry and whatever became of it since.
            let located = match earlier {
                Some(located) => located,
                None => self.locate(hold_id).await?,
            };
            return rerun_answer(self.located_hold_view(&located, Utc::now()).await?);
        }
        Ok(hold_view(
            event,
            hold_id,
            &customer_id,
            &seats,
            expires_at,
            HoldStatus::Held,
        ))
    }

    /// `SeatsUnavailable` if any of `seats` is held or booked at `now` by another hold (read only,
    /// no lock; from the blocks' writers in memory when they run). A re-run of the same hold (same idempotency key) is left to the appends.
    ///
    /// Answers whether the hold is already known to one of its blocks: a re-run.
    async fn refuse_taken_seats(
        &self,
        event: &KnownEvent,
        hold_id: HoldId,
        seats: &[SeatId],
        now: DateTime<Utc>,
    ) -> Result<bool, CommandError> {
        let by_block = event.by_block(seats);
        let ids: Vec<String> = by_block.keys().map(|b| event.block_id(*b)).collect();
        // The blocks' writers hold their committed states in memory; a block no writer holds is
        // read from the store once for the whole crowd ([`crate::cold_reads`]).
        let writers = self.store.block_writers();
        let in_memory = || -> Option<(Blocks, Vec<usize>)> {
            ids.iter()
                .map(|id| {
                    let c = writers.committed(id)?;
                    Some(((id.clone(), c.state), c.version))
                })
                .collect()
        };
        let mut known = in_memory();
        if known.is_none() {
            for id in &ids {
                self.cold_reads
                    .hold_in_memory(writers, self.store.pool(), id)
                    .await?;
            }
            known = in_memory();
        }
        if let Some((blocks, versions)) = known {
            match taken_seats(event, hold_id, seats, now, &blocks) {
                (false, taken) if taken.is_empty() => return Ok(false),
                // Taken (or already this hold's) in memory: right only if no other process
                // wrote those blocks since; one index lookup each says so (shared by the
                // refusals of a crowd: `crate::version_probe`).
                (rerun, taken) => {
                    let probes = self.store.block_probes();
                    let mut stored = Vec::with_capacity(ids.len());
                    for id in &ids {
                        let version = probes.stored_version(id).await;
                        stored.push(version.map_err(CommandError::Unavailable)?);
                    }
                    if stored == versions {
                        return verdict(event, rerun, taken);
                    }
                    // Behind: usually this process's own commit, landed while we looked (the
                    // writer publishes its state after the commit). Memory that has caught up
                    // with what was stored answers; only memory still behind is read again.
                    if let Some((blocks, now_known)) = in_memory() {
                        if now_known.iter().zip(&stored).all(|(m, s)| m >= s) {
                            let (rerun, taken) = taken_seats(event, hold_id, seats, now, &blocks);
                            return verdict(event, rerun, taken);
                        }
                    }
                }
            }
        }
        // Stale in memory (or a writer that holds no state yet): read from the store now (so no
        // lookup is needed), and handed to the blocks' writers.
        let mut blocks = Blocks::new();
        for id in &ids {
            let (block, version) = load_with_version::<SeatBlock>(self.store.pool(), id)
                .await
                .map_err(CommandError::from)?;
            let block = Arc::new(block);
            writers.seed(id, block.clone(), version);
            blocks.insert(id.clone(), block);
        }
        let (rerun, taken) = taken_seats(event, hold_id, seats, now, &blocks);
        verdict(event, rerun, taken)
    }

    /// Gives back the blocks already taken for a hold that failed, then its allowance.
    async fn undo_hold(
        &self,
        event: &KnownEvent,
        hold_id: HoldId,
        customer_id: &CustomerId,
        taken: &[u32],
        allowance_id: &str,
        ctx: &RequestContext,
    ) {
        let meta = ctx.metadata("UndoHold", Some(customer_id));
        for block in taken {
            let result = self
                .store
                .execute::<SeatBlock>(&event.block_id(*block), &meta, || {
                    SeatBlockCommand::ReleaseHold {
                        hold_id,
                        customer_id: customer_id.clone(),
                        now: Utc::now(),
                    }
                })
                .await;
            if let Err(e) = result {
                tracing::error!(%hold_id, block, error = %e, "could not release part of a failed hold; it frees itself at expiry");
            }
        }
        let result = self
            .return_allowance(allowance_id, hold_id, ReturnReason::HoldFailed, &meta)
            .await;
        if let Err(e) = result {
            tracing::error!(%hold_id, error = %e, "could not return the allowance of a failed hold; it frees itself at expiry");
        }
    }
}

/// Tries of a hold whose allowance reservation lost its version race (see [`crate::linked`]).
const RESERVE_ATTEMPTS: u32 = 3;

/// A seat block's answer to a hold, as the core tells it.
fn block_error(event: &KnownEvent, e: StoreError<SeatBlockError>) -> CommandError {
    match e {
        StoreError::Rejected(SeatBlockError::SeatsUnavailable(unavailable)) => {
            CommandError::SeatsUnavailable(seat_views(event, &unavailable))
        }
        StoreError::Rejected(e) => CommandError::Invalid(vec![e.to_string()]),
        e => e.into(),
    }
}

/// An allowance's answer to a reservation, as the core tells it.
fn allowance_error(e: StoreError<AllowanceError>) -> CommandError {
    match e {
        StoreError::Rejected(AllowanceError::LimitExceeded {
            limit,
            in_use,
            requested,
        }) => CommandError::CustomerLimitExceeded {
            limit,
            in_use,
            requested,
        },
        other => other.into(),
    }
}

/// Seat blocks by aggregate id, as the early check reads them.
type Blocks = HashMap<String, Arc<SeatBlock>>;

/// Whether `blocks` already know the hold, and which of `seats` another hold has at `now`.
fn taken_seats(
    event: &KnownEvent,
    hold_id: HoldId,
    seats: &[SeatId],
    now: DateTime<Utc>,
    blocks: &Blocks,
) -> (bool, Vec<SeatId>) {
    let rerun = blocks.values().any(|blk| blk.hold(hold_id).is_some());
    let taken: Vec<SeatId> = event
        .by_block(seats)
        .iter()
        .flat_map(|(b, block_seats)| {
            let block = blocks
                .get(&event.block_id(*b))
                .filter(|blk| blk.hold(hold_id).is_none());
            block_seats.iter().filter(move |s| {
                block.is_some_and(|blk| blk.seat_status(**s, now) != SeatStatus::Available)
            })
        })
        .copied()
        .collect();
    (rerun, taken)
}

/// The early check's answer: a re-run (`true`), go on (`false`), or the seats refused.
fn verdict(event: &KnownEvent, rerun: bool, taken: Vec<SeatId>) -> Result<bool, CommandError> {
    match taken.is_empty() {
        true => Ok(rerun),
        false => Err(CommandError::SeatsUnavailable(seat_views(event, &taken))),
    }
}

#[cfg(test)]
mod tests {
    use domain::{EventDefinition, EventPolicy, LayoutSpec, NewEvent};

    use super::*;

    /// Given a 2 x 5 grid with a limit of 3 seats per customer.
    fn event() -> KnownEvent {
        let draft = NewEvent {
            organizer: None,
            name: "show".into(),
            venue: None,
            starts_at: None,
            currency: None,
            layout: LayoutSpec::grid(2, 5, 1_000).unwrap(),
            hold_seconds: None,
            max_seats_per_customer: Some(3),
        };
        let (definition, _) = EventDefinition::validate(
            EventId(uuid::Uuid::from_u128(7)),
            draft,
            &EventPolicy::default(),
            Utc::now(),
        )
        .unwrap();
        KnownEvent::new(definition).unwrap()
    }

    #[test]
    fn when_seats_are_named_by_id_then_they_resolve_in_order() {
        let seats = resolve_seats(&event(), &[SeatRef::Id(4), SeatRef::Id(0)]).unwrap();
        assert_eq!(seats, [SeatId(4), SeatId(0)]);
    }

    #[test]
    fn when_no_seats_or_too_many_are_asked_then_it_is_refused_before_any_io() {
        let e = event();
        assert_eq!(resolve_seats(&e, &[]).unwrap_err().code(), "no_seats");
        let four: Vec<SeatRef> = (0..4).map(SeatRef::Id).collect();
        assert_eq!(
            resolve_seats(&e, &four).unwrap_err().code(),
            "too_many_seats"
        );
    }

    #[test]
    fn when_a_seat_is_unknown_or_named_twice_then_it_says_which() {
        let e = event();
        let unknown = resolve_seats(&e, &[SeatRef::Id(10)]).unwrap_err();
        assert_eq!(unknown.code(), "unknown_seats");
        let twice = resolve_seats(&e, &[SeatRef::Id(1), SeatRef::Id(1)]).unwrap_err();
        let CommandError::DuplicateSeats(seats) = twice else {
            panic!("not a duplicate")
        };
        assert_eq!(seats[0].seat_id, 1);
    }
}
