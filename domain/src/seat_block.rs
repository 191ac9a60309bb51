//! The seat block: the consistency boundary for seats.
//!
//! Policy:
//! - A seat is **available** unless a booked hold owns it, or a held hold owns it whose
//!   `expires_at` is still in the future at the command's `now`. An expired hold never blocks a
//!   seat, whether or not `HoldExpired` was recorded yet.
//! - `HoldSeats` is all-or-nothing within the block: if any requested seat is unavailable the
//!   command fails naming every unavailable seat, and nothing is written. When it takes a seat from
//!   an expired hold, it first records `HoldExpired` for that hold, in the same atomic append.
//! - `BookHold` succeeds only for the hold's own customer, while the hold is held and
//!   `decided_at < expires_at`. Booking an already booked hold again is a no-op (idempotent).
//! - `ReleaseHold` frees the seats at once; releasing again, or releasing an expired hold, is a
//!   no-op (an expired one gets its `HoldExpired` recorded). A booked hold cannot be released.
//! - Re-sending `HoldSeats` with the same hold id, customer and seats is a no-op, so a retried
//!   request never takes seats twice.
//! - `ExtendHold` takes a live hold into an order and moves its expiry to the order's payment
//!   window (never earlier). A hold is in one order at most: the same order again changes nothing,
//!   another order is refused.
//! - A booking spans every block of its hold or none: when another block refused it (the hold
//!   expired there first), `UndoBooking` records `BookingUndone` in a block that booked, freeing
//!   its seats; the hold ends expired.
//! - The block's state stays bounded whatever its history: it remembers its live holds and only
//!   the last [`CLOSED_KEPT`] closed ones (released, expired, undone). Questions about an older
//!   hold are answered from that hold's own events (the core's hold-filtered loads), never by
//!   this state; the core never re-sends a closed hold.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::ids::{CustomerId, EventId, HoldId, SeatId};
pub use crate::seat_status::SeatStatus;

pub use crate::seat_block_messages::{
    HoldChange, SeatBlockCommand, SeatBlockError, SeatBlockEvent,
};
use crate::stored::names::aggregate_type;

/// How many closed holds a block remembers (see the module policy).
pub const CLOSED_KEPT: usize = 32;

/// Where a hold stands in this block's history (expiry by time is judged separately, see
/// [`BlockHold::is_live`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldProgress {
    Held,
    Booked,
    Released,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHold {
    pub customer_id: CustomerId,
    pub seats: Vec<SeatId>,
    pub expires_at: DateTime<Utc>,
    pub progress: HoldProgress,
    /// The order the hold was taken into, if any.
    #[serde(default)]
    pub order: Option<crate::ids::OrderId>,
}

impl BlockHold {
    /// Does this hold keep its seats from others at `now`?
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        match self.progress {
            HoldProgress::Booked => true,
            HoldProgress::Held => now < self.expires_at,
            HoldProgress::Released | HoldProgress::Expired => false,
        }
    }

    /// The hold's status as a customer sees it at `now`.
    pub fn progress_at(&self, now: DateTime<Utc>) -> HoldProgress {
        match self.progress {
            HoldProgress::Held if now >= self.expires_at => HoldProgress::Expired,
            other => other,
        }
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct SeatBlock {
    event_id: Option<EventId>,
    /// The hold that last took each seat; the seat is taken only while that hold is live.
    owners: BTreeMap<SeatId, HoldId>,
    /// Shared, so that a copy of the block (a writer decides each batch on its own copy) copies
    /// pointers, not every hold; a hold that changes is copied then (`Arc::make_mut`).
    holds: HashMap<HoldId, Arc<BlockHold>>,
    /// Closed holds still remembered, oldest first (at most [`CLOSED_KEPT`]).
    #[serde(default)]
    closed: VecDeque<HoldId>,
}

impl SeatBlock {
    pub fn hold(&self, hold_id: HoldId) -> Option<&BlockHold> {
        self.holds.get(&hold_id).map(Arc::as_ref)
    }

    pub fn seat_status(&self, seat: SeatId, now: DateTime<Utc>) -> SeatStatus {
        match self.live_owner(seat, now) {
            None => SeatStatus::Available,
            Some((_, h)) if h.progress == HoldProgress::Booked => SeatStatus::Booked,
            Some(_) => SeatStatus::Held,
        }
    }

    /// Which seats of `seats` (ids in this block) are available at `now`, one flag each, and
    /// when that may next change without an event: the earliest expiry among their live holds.
    pub fn availability(
        &self,
        seats: std::ops::Range<u32>,
        now: DateTime<Utc>,
    ) -> (Vec<bool>, Option<DateTime<Utc>>) {
        let mut free = vec![true; seats.len()];
        let mut changes_at: Option<DateTime<Utc>> = None;
        for (seat, hold_id) in self.owners.range(SeatId(seats.start)..SeatId(seats.end)) {
            let Some(hold) = self.holds.get(hold_id).filter(|h| h.is_live(now)) else {
                continue;
            };
            free[(seat.0 - seats.start) as usize] = false;
            if hold.progress == HoldProgress::Held {
                changes_at = Some(changes_at.map_or(hold.expires_at, |t| t.min(hold.expires_at)));
            }
        }
        (free, changes_at)
    }

    fn live_owner(&self, seat: SeatId, now: DateTime<Utc>) -> Option<(HoldId, &BlockHold)> {
        let hold_id = *self.owners.get(&seat)?;
        let hold = self.holds.get(&hold_id)?;
        hold.is_live(now).then_some((hold_id, hold))
    }

    fn change(&self, hold_id: HoldId, hold: &BlockHold, at: DateTime<Utc>) -> HoldChange {
        HoldChange {
            event_id: self.event_id.expect("a block with holds knows its event"),
            hold_id,
            customer_id: hold.customer_id.clone(),
            seats: hold.seats.clone(),
            expires_at: hold.expires_at,
            at,
        }
    }

    fn owned_hold(
        &self,
        hold_id: HoldId,
        customer_id: &CustomerId,
    ) -> Result<&BlockHold, SeatBlockError> {
        let hold = self
            .holds
            .get(&hold_id)
            .ok_or(SeatBlockError::HoldNotFound(hold_id))?;
        if &hold.customer_id != customer_id {
            return Err(SeatBlockError::NotHoldOwner(hold_id));
        }
        Ok(hold)
    }

    #[allow(clippy::too_many_arguments)]
    async fn hold_seats(
        &mut self,
        event_id: EventId,
        hold_id: HoldId,
        customer_id: CustomerId,
        seats: Vec<SeatId>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), SeatBlockError> {
        if seats.is_empty() {
            return Err(SeatBlockError::NoSeats);
        }
        let mut seen = BTreeSet::new();
        for seat in &seats {
            if !seen.insert(*seat) {
                return Err(SeatBlockError::DuplicateSeat(*seat));
            }
        }
        if let Some(existing) = self.holds.get(&hold_id) {
            let same = existing.customer_id == customer_id
                && existing.seats.iter().collect::<BTreeSet<_>>() == seen.iter().collect();
            return if same {
                Ok(())
            } else {
                Err(SeatBlockError::HoldIdReused(hold_id))
            };
        }
        let unavailable: Vec<SeatId> = seats
            .iter()
            .copied()
            .filter(|s| self.live_owner(*s, now).is_some())
            .collect();
        if !unavailable.is_empty() {
            return Err(SeatBlockError::SeatsUnavailable(unavailable));
        }
        // Seats under expired holds are free to take; record those expiries first.
        let lapsed: BTreeSet<HoldId> = seats
            .iter()
            .filter_map(|s| self.owners.get(s).copied())
            .filter(|h| self.holds[h].progress == HoldProgress::Held)
            .collect();
        self.event_id.get_or_insert(event_id);
        for lapsed_id in lapsed {
            let change = self.change(lapsed_id, &self.holds[&lapsed_id], now);
            sink.write(SeatBlockEvent::HoldExpired(change), self).await;
        }
        let change = HoldChange {
            event_id,
            hold_id,
            customer_id,
            seats,
            expires_at,
            at: now,
        };
        sink.write(SeatBlockEvent::SeatHeld(change), self).await;
        Ok(())
    }
}

impl Aggregate for SeatBlock {
    const TYPE: &'static str = aggregate_type::SEAT_BLOCK;
    type Command = SeatBlockCommand;
    type Event = SeatBlockEvent;
    type Error = SeatBlockError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            SeatBlockCommand::HoldSeats {
                event_id,
                hold_id,
                customer_id,
                seats,
                expires_at,
                now,
            } => {
                self.hold_seats(event_id, hold_id, customer_id, seats, expires_at, now, sink)
                    .await
            }
            SeatBlockCommand::BookHold {
                hold_id,
                customer_id,
                decided_at,
            } => {
                let hold = self.owned_hold(hold_id, &customer_id)?;
                match hold.progress_at(decided_at) {
                    HoldProgress::Booked => Ok(()),
                    HoldProgress::Released => Err(SeatBlockError::HoldReleased(hold_id)),
                    HoldProgress::Expired => Err(SeatBlockError::HoldExpired(hold_id)),
                    HoldProgress::Held => {
                        let change = self.change(hold_id, hold, decided_at);
                        sink.write(SeatBlockEvent::SeatBooked(change), self).await;
                        Ok(())
                    }
                }
            }
            SeatBlockCommand::ReleaseHold {
                hold_id,
                customer_id,
                now,
            } => {
                let hold = self.owned_hold(hold_id, &customer_id)?;
                let change = self.change(hold_id, hold, now);
                match (hold.progress, hold.progress_at(now)) {
                    (HoldProgress::Booked, _) => Err(SeatBlockError::AlreadyBooked(hold_id)),
                    (HoldProgress::Released | HoldProgress::Expired, _) => Ok(()),
                    (HoldProgress::Held, HoldProgress::Expired) => {
                        sink.write(SeatBlockEvent::HoldExpired(change), self).await;
                        Ok(())
                    }
                    (HoldProgress::Held, _) => {
                        sink.write(SeatBlockEvent::SeatReleased(change), self).await;
                        Ok(())
                    }
                }
            }
            SeatBlockCommand::ExpireHolds { now } => {
                let mut due: Vec<(HoldId, &BlockHold)> = self
                    .lapsed_holds(now)
                    .map(|id| (id, &*self.holds[&id]))
                    .collect();
                due.sort_by_key(|(id, h)| (h.expires_at, *id));
                let changes: Vec<HoldChange> =
                    due.iter().map(|(id, h)| self.change(*id, h, now)).collect();
                for change in changes {
                    sink.write(SeatBlockEvent::HoldExpired(change), self).await;
                }
                Ok(())
            }
            SeatBlockCommand::ExtendHold {
                order_id,
                hold_id,
                customer_id,
                until,
                now,
            } => {
                let hold = self.owned_hold(hold_id, &customer_id)?;
                if hold.order == Some(order_id) {
                    return Ok(());
                }
                if hold.order.is_some() {
                    return Err(SeatBlockError::HoldInOrder(hold_id));
                }
                match hold.progress_at(now) {
                    HoldProgress::Booked => Err(SeatBlockError::AlreadyBooked(hold_id)),
                    HoldProgress::Released => Err(SeatBlockError::HoldReleased(hold_id)),
                    HoldProgress::Expired => Err(SeatBlockError::HoldExpired(hold_id)),
                    HoldProgress::Held => {
                        let change = HoldChange {
                            expires_at: until.max(hold.expires_at),
                            ..self.change(hold_id, hold, now)
                        };
                        let e = SeatBlockEvent::HoldExtended { change, order_id };
                        sink.write(e, self).await;
                        Ok(())
                    }
                }
            }
            SeatBlockCommand::UndoBooking { hold_id, now } => {
                let Some(hold) = self.holds.get(&hold_id) else {
                    return Ok(());
                };
                if hold.progress == HoldProgress::Booked {
                    let change = self.change(hold_id, hold, now);
                    sink.write(SeatBlockEvent::BookingUndone(change), self)
                        .await;
                }
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            SeatBlockEvent::SeatHeld(c) => {
                self.event_id.get_or_insert(c.event_id);
                for seat in &c.seats {
                    self.owners.insert(*seat, c.hold_id);
                }
                self.holds.insert(
                    c.hold_id,
                    Arc::new(BlockHold {
                        customer_id: c.customer_id,
                        seats: c.seats,
                        expires_at: c.expires_at,
                        progress: HoldProgress::Held,
                        order: None,
                    }),
                );
            }
            SeatBlockEvent::SeatBooked(c) => self.set_progress(&c, HoldProgress::Booked),
            SeatBlockEvent::SeatReleased(c) => self.set_progress(&c, HoldProgress::Released),
            SeatBlockEvent::HoldExtended { change, order_id } => {
                if let Some(hold) = self.holds.get_mut(&change.hold_id).map(Arc::make_mut) {
                    hold.expires_at = change.expires_at;
                    hold.order = Some(order_id);
                }
            }
            SeatBlockEvent::HoldExpired(c) | SeatBlockEvent::BookingUndone(c) => {
                self.set_progress(&c, HoldProgress::Expired)
            }
        }
    }
}

impl SeatBlock {
    fn set_progress(&mut self, change: &HoldChange, progress: HoldProgress) {
        if let Some(hold) = self.holds.get_mut(&change.hold_id).map(Arc::make_mut) {
            hold.progress = progress;
        }
        if matches!(progress, HoldProgress::Released | HoldProgress::Expired) {
            for seat in &change.seats {
                if self.owners.get(seat) == Some(&change.hold_id) {
                    self.owners.remove(seat);
                }
            }
            if !self.closed.contains(&change.hold_id) {
                self.closed.push_back(change.hold_id);
            }
            while self.closed.len() > CLOSED_KEPT {
                if let Some(forgotten) = self.closed.pop_front() {
                    self.holds.remove(&forgotten);
                }
            }
        }
    }

    /// Holds still `Held` whose time was up at `now` (what `ExpireHolds` would record).
    pub fn lapsed_holds(&self, now: DateTime<Utc>) -> impl Iterator<Item = HoldId> + '_ {
        self.holds
            .iter()
            .filter(move |(_, h)| h.progress == HoldProgress::Held && now >= h.expires_at)
            .map(|(id, _)| *id)
    }

    /// How many holds the block remembers (live and recently closed): bounded, see the policy.
    pub fn remembered_holds(&self) -> usize {
        self.holds.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    type BlockTest = TestFramework<SeatBlock>;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }
    fn event_id() -> EventId {
        EventId(Uuid::from_u128(7))
    }
    fn hold(n: u128) -> HoldId {
        HoldId(Uuid::from_u128(n))
    }
    fn alice() -> CustomerId {
        CustomerId::parse("alice").unwrap()
    }
    fn bob() -> CustomerId {
        CustomerId::parse("bob").unwrap()
    }
    fn seats(ids: &[u32]) -> Vec<SeatId> {
        ids.iter().map(|&i| SeatId(i)).collect()
    }
    fn change(h: u128, who: CustomerId, s: &[u32], expires: i64, at: i64) -> HoldChange {
        HoldChange {
            event_id: event_id(),
            hold_id: hold(h),
            customer_id: who,
            seats: seats(s),
            expires_at: t(expires),
            at: t(at),
        }
    }
    fn hold_cmd(h: u128, who: CustomerId, s: &[u32], now: i64) -> SeatBlockCommand {
        SeatBlockCommand::HoldSeats {
            event_id: event_id(),
            hold_id: hold(h),
            customer_id: who,
            seats: seats(s),
            expires_at: t(now + 600),
            now: t(now),
        }
    }
    fn alice_holds_1_2() -> SeatBlockEvent {
        SeatBlockEvent::SeatHeld(change(1, alice(), &[1, 2], 600, 0))
    }

    #[test]
    fn seat_codes_are_the_compact_encoding_and_read_back() {
        let all = [SeatStatus::Available, SeatStatus::Held, SeatStatus::Booked];
        let codes: String = all.iter().map(|s| s.code() as char).collect();
        assert_eq!(codes, "AHB");
        for status in all {
            assert_eq!(SeatStatus::from_code(status.code()), status);
        }
    }

    #[test]
    fn given_free_seats_when_held_then_one_event_carries_them_all() {
        BlockTest::with(())
            .given_no_previous_events()
            .when(hold_cmd(1, alice(), &[1, 2], 0))
            .then_expect_events(vec![alice_holds_1_2()]);
    }

    #[test]
    fn given_live_hold_when_another_customer_holds_overlap_then_unavailable_seats_named() {
        BlockTest::with(())
            .given(vec![alice_holds_1_2()])
            .when(hold_cmd(2, bob(), &[2, 3, 1], 599))
            .then_expect_error(SeatBlockError::SeatsUnavailable(seats(&[2, 1])));
    }

    #[test]
    fn given_booked_seat_when_held_long_after_then_still_unavailable() {
        BlockTest::with(())
            .given(vec![
                alice_holds_1_2(),
                SeatBlockEvent::SeatBooked(change(1, alice(), &[1, 2], 600, 10)),
            ])
            .when(hold_cmd(2, bob(), &[2], 100_000))
            .then_expect_error(SeatBlockError::SeatsUnavailable(seats(&[2])));
    }

    #[test]
    fn given_expired_unrecorded_hold_when_held_then_expiry_recorded_first() {
        BlockTest::with(())
            .given(vec![alice_holds_1_2()])
            .when(hold_cmd(2, bob(), &[2], 600))
            .then_expect_events(vec![
                SeatBlockEvent::HoldExpired(change(1, alice(), &[1, 2], 600, 600)),
                SeatBlockEvent::SeatHeld(change(2, bob(), &[2], 1200, 600)),
            ]);
    }

    #[test]
    fn given_released_seats_when_held_then_taken_without_expiry() {
        BlockTest::with(())
            .given(vec![
                alice_holds_1_2(),
                SeatBlockEvent::SeatReleased(change(1, alice(), &[1, 2], 600, 5)),
            ])
            .when(hold_cmd(2, bob(), &[1], 6))
            .then_expect_events(vec![SeatBlockEvent::SeatHeld(change(
                2,
                bob(),
                &[1],
                606,
                6,
            ))]);
    }

    #[test]
    fn when_seats_empty_or_duplicated_then_refused() {
        BlockTest::with(())
            .given_no_previous_events()
            .when(hold_cmd(1, alice(), &[], 0))
            .then_expect_error(SeatBlockError::NoSeats);
        BlockTest::with(())
            .given_no_previous_events()
            .when(hold_cmd(1, alice(), &[4, 4], 0))
            .then_expect_error(SeatBlockError::DuplicateSeat(SeatId(4)));
    }

    #[test]
    fn given_hold_when_same_hold_sent_again_then_nothing_new() {
        BlockTest::with(())
            .given(vec![alice_holds_1_2()])
            .when(hold_cmd(1, alice(), &[2, 1], 3))
            .then_expect_events(vec![]);
        BlockTest::with(())
            .given(vec![alice_holds_1_2()])
            .when(hold_cmd(1, alice(), &[3], 3))
            .then_expect_error(SeatBlockError::HoldIdReused(hold(1)));
    }

    #[test]
    fn given_live_hold_when_owner_books_then_booked_and_again_is_no_op() {
        let book = || SeatBlockCommand::BookHold {
            hold_id: hold(1),
            customer_id: alice(),
            decided_at: t(599),
        };
        BlockTest::with(())
            .given(vec![alice_holds_1_2()])
            .when(book())
            .then_expect_events(vec![SeatBlockEvent::SeatBooked(change(
                1,
                alice(),
                &[1, 2],
                600,
                599,
            ))]);
        BlockTest::with(())
            .given(vec![
                alice_holds_1_2(),
                SeatBlockEvent::SeatBooked(change(1, alice(), &[1, 2], 600, 599)),
            ])
            .when(book())
            .then_expect_events(vec![]);
    }

    #[test]
    fn given_hold_when_booked_at_or_after_expiry_then_refused() {
        BlockTest::with(())
            .given(vec![alice_holds_1_2()])
            .when(SeatBlockCommand::BookHold {
                hold_id: hold(1),
                customer_id: alice(),
                decided_at: t(600),
            })
            .then_expect_error(SeatBlockError::HoldExpired(hold(1)));
    }

    #[test]
    fn given_hold_when_someone_else_books_or_releases_then_refused() {
        BlockTest::with(())
            .given(vec![alice_holds_1_2()])
            .when(SeatBlockCommand::BookHold {
                hold_id: hold(1),
                customer_id: bob(),
                decided_at: t(1),
            })
            .then_expect_error(SeatBlockError::NotHoldOwner(hold(1)));
        BlockTest::with(())
            .given(vec![alice_holds_1_2()])
            .when(SeatBlockCommand::ReleaseHold {
                hold_id: hold(1),
                customer_id: bob(),
                now: t(1),
            })
            .then_expect_error(SeatBlockError::NotHoldOwner(hold(1)));
    }

    #[test]
    fn given_released_hold_when_booked_then_refused() {
        BlockTest::with(())
            .given(vec![
                alice_holds_1_2(),
                SeatBlockEvent::SeatReleased(change(1, alice(), &[1, 2], 600, 5)),
            ])
            .when(SeatBlockCommand::BookHold {
                hold_id: hold(1),
                customer_id: alice(),
                decided_at: t(6),
            })
            .then_expect_error(SeatBlockError::HoldReleased(hold(1)));
    }

    #[test]
    fn given_unknown_hold_when_booked_then_not_found() {
        BlockTest::with(())
            .given(vec![alice_holds_1_2()])
            .when(SeatBlockCommand::BookHold {
                hold_id: hold(9),
                customer_id: alice(),
                decided_at: t(6),
            })
            .then_expect_error(SeatBlockError::HoldNotFound(hold(9)));
    }

    #[test]
    fn given_live_hold_when_released_then_released_and_again_is_no_op() {
        let release = |now| SeatBlockCommand::ReleaseHold {
            hold_id: hold(1),
            customer_id: alice(),
            now: t(now),
        };
        BlockTest::with(())
            .given(vec![alice_holds_1_2()])
            .when(release(5))
            .then_expect_events(vec![SeatBlockEvent::SeatReleased(change(
                1,
                alice(),
                &[1, 2],
                600,
                5,
            ))]);
        BlockTest::with(())
            .given(vec![
                alice_holds_1_2(),
                SeatBlockEvent::SeatReleased(change(1, alice(), &[1, 2], 600, 5)),
            ])
            .when(release(6))
            .then_expect_events(vec![]);
        // Releasing after the expiry records the expiry instead.
        BlockTest::with(())
            .given(vec![alice_holds_1_2()])
            .when(release(700))
            .then_expect_events(vec![SeatBlockEvent::HoldExpired(change(
                1,
                alice(),
                &[1, 2],
                600,
                700,
            ))]);
    }

    #[test]
    fn given_booked_hold_when_released_then_refused() {
        BlockTest::with(())
            .given(vec![
                alice_holds_1_2(),
                SeatBlockEvent::SeatBooked(change(1, alice(), &[1, 2], 600, 5)),
            ])
            .when(SeatBlockCommand::ReleaseHold {
                hold_id: hold(1),
                customer_id: alice(),
                now: t(6),
            })
            .then_expect_error(SeatBlockError::AlreadyBooked(hold(1)));
    }

    #[test]
    fn given_holds_when_swept_then_only_due_unrecorded_ones_expire() {
        BlockTest::with(())
            .given(vec![
                alice_holds_1_2(),
                SeatBlockEvent::SeatHeld(change(2, bob(), &[3], 900, 300)),
                SeatBlockEvent::SeatHeld(change(3, bob(), &[4], 500, 0)),
                SeatBlockEvent::SeatBooked(change(3, bob(), &[4], 500, 1)),
            ])
            .when(SeatBlockCommand::ExpireHolds { now: t(650) })
            .then_expect_events(vec![SeatBlockEvent::HoldExpired(change(
                1,
                alice(),
                &[1, 2],
                600,
                650,
            ))]);
    }

    #[test]
    fn given_held_and_booked_seats_then_availability_flags_them_until_the_hold_expires() {
        let mut block = SeatBlock::default();
        block.apply(alice_holds_1_2());
        let (free, changes_at) = block.availability(0..4, t(0));
        assert_eq!(free, [true, false, false, true]);
        assert_eq!(changes_at, Some(t(600)));
        let (free, changes_at) = block.availability(0..4, t(600));
        assert_eq!(free, [true; 4]);
        assert_eq!(changes_at, None);
    }

    #[test]
    fn seat_status_follows_the_clock() {
        let mut block = SeatBlock::default();
        block.apply(alice_holds_1_2());
        assert_eq!(block.seat_status(SeatId(1), t(599)), SeatStatus::Held);
        assert_eq!(block.seat_status(SeatId(1), t(600)), SeatStatus::Available);
        assert_eq!(block.seat_status(SeatId(3), t(0)), SeatStatus::Available);
        block.apply(SeatBlockEvent::SeatBooked(change(
            1,
            alice(),
            &[1, 2],
            600,
            5,
        )));
        assert_eq!(block.seat_status(SeatId(2), t(10_000)), SeatStatus::Booked);
        assert_eq!(
            block.hold(hold(1)).unwrap().progress_at(t(10_000)),
            HoldProgress::Booked
        );
    }

    #[test]
    fn given_booked_hold_when_its_booking_is_undone_then_seats_free_and_hold_expired() {
        let booked = SeatBlockEvent::SeatBooked(change(1, alice(), &[1, 2], 600, 5));
        let undo = |now| SeatBlockCommand::UndoBooking {
            hold_id: hold(1),
            now: t(now),
        };
        BlockTest::with(())
            .given(vec![alice_holds_1_2(), booked.clone()])
            .when(undo(7))
            .then_expect_events(vec![SeatBlockEvent::BookingUndone(change(
                1,
                alice(),
                &[1, 2],
                600,
                7,
            ))]);
        // Only a booked hold is undone; anything else (or an unknown hold) is left as it is.
        BlockTest::with(())
            .given(vec![alice_holds_1_2()])
            .when(undo(7))
            .then_expect_events(vec![]);
        BlockTest::with(())
            .given_no_previous_events()
            .when(undo(7))
            .then_expect_events(vec![]);
        // After the undo, the seats go to the next buyer.
        BlockTest::with(())
            .given(vec![
                alice_holds_1_2(),
                booked,
                SeatBlockEvent::BookingUndone(change(1, alice(), &[1, 2], 600, 7)),
            ])
            .when(hold_cmd(2, bob(), &[1], 8))
            .then_expect_events(vec![SeatBlockEvent::SeatHeld(change(
                2,
                bob(),
                &[1],
                608,
                8,
            ))]);
    }

    #[test]
    fn given_a_long_history_of_holds_then_the_block_remembers_live_ones_and_few_closed() {
        let mut block = SeatBlock::default();
        for n in 0..1_000u128 {
            let at = n as i64;
            block.apply(SeatBlockEvent::SeatHeld(change(
                n,
                alice(),
                &[1],
                at + 600,
                at,
            )));
            block.apply(SeatBlockEvent::SeatReleased(change(
                n,
                alice(),
                &[1],
                at + 600,
                at,
            )));
        }
        block.apply(SeatBlockEvent::SeatHeld(change(
            5_000,
            bob(),
            &[2],
            9_999,
            1_000,
        )));
        assert_eq!(block.remembered_holds(), CLOSED_KEPT + 1);
        assert_eq!(block.seat_status(SeatId(2), t(1_001)), SeatStatus::Held);
        assert_eq!(
            block.seat_status(SeatId(1), t(1_001)),
            SeatStatus::Available
        );
        // The newest closed holds still answer precisely; the oldest are forgotten.
        assert_eq!(
            block.hold(hold(999)).unwrap().progress,
            HoldProgress::Released
        );
        assert!(block.hold(hold(0)).is_none());
    }

    #[test]
    fn given_a_live_hold_when_taken_into_an_order_then_it_lasts_longer_and_is_in_that_order_only() {
        let order = |n: u128| crate::ids::OrderId(Uuid::from_u128(n));
        let extend = |o: u128, until: i64, now: i64| SeatBlockCommand::ExtendHold {
            order_id: order(o),
            hold_id: hold(1),
            customer_id: alice(),
            until: t(until),
            now: t(now),
        };
        let extended = SeatBlockEvent::HoldExtended {
            change: change(1, alice(), &[1, 2], 1_500, 100),
            order_id: order(7),
        };
        BlockTest::with(())
            .given(vec![alice_holds_1_2()])
            .when(extend(7, 1_500, 100))
            .then_expect_events(vec![extended.clone()]);
        // The same order again changes nothing; another order is refused.
        BlockTest::with(())
            .given(vec![alice_holds_1_2(), extended.clone()])
            .when(extend(7, 2_000, 200))
            .then_expect_events(vec![]);
        BlockTest::with(())
            .given(vec![alice_holds_1_2(), extended.clone()])
            .when(extend(8, 2_000, 200))
            .then_expect_error(SeatBlockError::HoldInOrder(hold(1)));
        // The expiry never moves earlier, but the hold is still claimed.
        BlockTest::with(())
            .given(vec![alice_holds_1_2()])
            .when(extend(7, 300, 100))
            .then_expect_events(vec![SeatBlockEvent::HoldExtended {
                change: change(1, alice(), &[1, 2], 600, 100),
                order_id: order(7),
            }]);
        // An expired hold cannot be revived, and only its customer orders it.
        BlockTest::with(())
            .given(vec![alice_holds_1_2()])
            .when(extend(7, 1_500, 600))
            .then_expect_error(SeatBlockError::HoldExpired(hold(1)));
        BlockTest::with(())
            .given(vec![alice_holds_1_2()])
            .when(SeatBlockCommand::ExtendHold {
                order_id: order(7),
                hold_id: hold(1),
                customer_id: bob(),
                until: t(1_500),
                now: t(100),
            })
            .then_expect_error(SeatBlockError::NotHoldOwner(hold(1)));
        // Extended, the seats stay taken past the first expiry and are free after the new one.
        let mut block = SeatBlock::default();
        block.apply(alice_holds_1_2());
        block.apply(extended);
        assert_eq!(block.seat_status(SeatId(1), t(1_000)), SeatStatus::Held);
        assert_eq!(
            block.seat_status(SeatId(1), t(1_500)),
            SeatStatus::Available
        );
        assert_eq!(block.lapsed_holds(t(1_000)).count(), 0);
    }
}
