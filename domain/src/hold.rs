//! A hold's lifecycle as customers see it: one status, derived in one place.
//!
//! Policy:
//! - A hold moves forward only: `pending` (allowance reserved, seats not all taken yet), then
//!   `held`, then exactly one final status: `booked`, `released`, `expired` or `failed` (never took
//!   effect). [`HoldStatus::rank`] orders them so a late copy of an older status is recognisable.
//! - Expiry is lazy: a hold still `held` at its `expires_at` *is* expired, and one still `pending`
//!   then has failed, whether or not anything was written ([`HoldStatus::at`]).
//! - Readers that follow the stored events ([`HoldTrack`]) and the command side that reads the seat
//!   blocks ([`HoldStatus::from_blocks`]) derive the status with the rules here and nowhere else.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::customer_allowance::{AllowanceState, CustomerAllowanceEvent, ReturnReason};
use crate::ids::SeatId;
use crate::seat_block::{HoldChange, HoldProgress, SeatBlockEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    /// Being placed right now (or interrupted; it turns `failed` at its expiry).
    Pending,
    Held,
    Booked,
    Released,
    Expired,
    /// Never took effect: some seats were not available, and whatever was taken was given back.
    Failed,
}

impl HoldStatus {
    /// No further change will happen.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Held)
    }

    /// Statuses only move forward: pending, then held, then one final status. A change of lower
    /// rank than one already seen is an older, late copy.
    pub fn rank(self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Held => 1,
            _ => 2,
        }
    }

    /// The status as of `now`, with lazy expiry applied.
    pub fn at(self, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        match self {
            Self::Held if now >= expires_at => Self::Expired,
            Self::Pending if now >= expires_at => Self::Failed,
            s => s,
        }
    }

    /// The status from the command side's own records: the hold's progress in each of its seat
    /// blocks (`None` when some block has not got it) and its allowance entry.
    pub fn from_blocks(
        blocks: Option<&[HoldProgress]>,
        allowance: AllowanceState,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        match blocks {
            Some(p) if p.iter().all(|s| *s == HoldProgress::Booked) => Self::Booked,
            Some(p) if p.contains(&HoldProgress::Released) => Self::Released,
            Some(p) if p.contains(&HoldProgress::Expired) => Self::Expired,
            Some(_) => Self::Held.at(expires_at, now),
            None if matches!(allowance, AllowanceState::Returned(_)) => Self::Failed,
            None => Self::Pending.at(expires_at, now),
        }
    }
}

/// Reads the stored spelling (`pending`, `held`, ...), which is serde's: one spelling for JSON,
/// the read models' text column and the API.
impl TryFrom<String> for HoldStatus {
    type Error = serde_json::Error;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        serde_json::from_value(serde_json::Value::String(s))
    }
}

/// A hold as a reader rebuilds it from the stored events, in the order they were recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldTrack {
    pub status: HoldStatus,
    /// Every seat of the hold (all blocks).
    pub seats: Vec<SeatId>,
    /// How many of them the seat blocks have taken so far.
    pub held_seats: u32,
    /// How many of them the seat blocks have booked (the hold is booked once all have).
    pub booked_seats: u32,
    pub expires_at: DateTime<Utc>,
}

/// A stored event about a hold.
#[derive(Debug, Clone, Copy)]
pub enum HoldEvent<'a> {
    Block(&'a SeatBlockEvent),
    Allowance(&'a CustomerAllowanceEvent),
}

impl HoldEvent<'_> {
    pub fn change(&self) -> &HoldChange {
        match self {
            Self::Block(e) => e.change(),
            Self::Allowance(e) => e.change(),
        }
    }
}

impl HoldTrack {
    /// A hold first seen through `change`: pending, with no seats taken.
    pub fn new(change: &HoldChange) -> Self {
        Self {
            status: HoldStatus::Pending,
            seats: Vec::new(),
            held_seats: 0,
            booked_seats: 0,
            expires_at: change.expires_at,
        }
    }

    /// Applies one event. Final statuses stay final, except that a booking wins over anything but a
    /// failure (a booking is only recorded for a live hold), and an undone booking ends expired.
    /// A hold is booked once every one of its seats is: a booking part way (some blocks booked,
    /// others not yet, or refusing and about to be undone) still reads held.
    pub fn apply(&mut self, event: HoldEvent<'_>) {
        use HoldStatus::*;
        match event {
            HoldEvent::Allowance(CustomerAllowanceEvent::AllowanceReserved(c)) => {
                self.seats.clone_from(&c.seats);
                self.expires_at = c.expires_at;
            }
            HoldEvent::Allowance(CustomerAllowanceEvent::AllowanceCommitted(_)) => {}
            HoldEvent::Allowance(CustomerAllowanceEvent::AllowanceExtended(c))
            | HoldEvent::Block(SeatBlockEvent::HoldExtended { change: c, .. }) => {
                self.expires_at = self.expires_at.max(c.expires_at);
            }
            HoldEvent::Allowance(CustomerAllowanceEvent::AllowanceReturned { reason, .. }) => {
                match reason {
                    ReturnReason::HoldFailed if self.status != Booked => self.status = Failed,
                    ReturnReason::Released if !self.status.is_final() => self.status = Released,
                    _ => {}
                }
            }
            HoldEvent::Block(SeatBlockEvent::SeatHeld(c)) => {
                self.held_seats += c.seats.len() as u32;
                if self.seats.is_empty() {
                    self.seats.clone_from(&c.seats);
                }
                if self.status == Pending && self.held_seats as usize >= self.seats.len() {
                    self.status = Held;
                }
            }
            HoldEvent::Block(SeatBlockEvent::SeatBooked(c)) => {
                self.booked_seats += c.seats.len() as u32;
                let whole = self.booked_seats as usize >= self.seats.len();
                if self.status != Failed && whole {
                    self.status = Booked;
                }
            }
            HoldEvent::Block(SeatBlockEvent::SeatReleased(_)) => {
                if !self.status.is_final() {
                    self.status = Released;
                }
            }
            HoldEvent::Block(SeatBlockEvent::HoldExpired(_)) => {
                if !self.status.is_final() {
                    self.status = Expired;
                }
            }
            // A booking that another block refused is taken back: the hold expired unbooked.
            HoldEvent::Block(SeatBlockEvent::BookingUndone(c)) => {
                self.booked_seats = self.booked_seats.saturating_sub(c.seats.len() as u32);
                if self.status != Failed {
                    self.status = Expired;
                }
            }
        }
    }

    /// The status as of `now` (lazy expiry).
    pub fn status_at(&self, now: DateTime<Utc>) -> HoldStatus {
        self.status.at(self.expires_at, now)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::{CustomerId, EventId, HoldId};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap()
    }

    fn change(seats: &[u32]) -> HoldChange {
        HoldChange {
            event_id: EventId(uuid::Uuid::from_u128(1)),
            hold_id: HoldId(uuid::Uuid::from_u128(2)),
            customer_id: CustomerId::parse("alice").unwrap(),
            seats: seats.iter().copied().map(SeatId).collect(),
            expires_at: t0() + Duration::minutes(10),
            at: t0(),
        }
    }

    /// Given the events so far, when they are applied in order, then the track is at `status`.
    fn given(events: &[HoldEvent<'_>]) -> HoldTrack {
        let mut track = HoldTrack::new(events[0].change());
        for e in events {
            track.apply(*e);
        }
        track
    }

    #[test]
    fn given_a_reservation_when_every_block_holds_then_the_hold_is_held() {
        let reserved = CustomerAllowanceEvent::AllowanceReserved(change(&[1, 2, 40]));
        let first = SeatBlockEvent::SeatHeld(change(&[1, 2]));
        let second = SeatBlockEvent::SeatHeld(change(&[40]));
        let partly = given(&[HoldEvent::Allowance(&reserved), HoldEvent::Block(&first)]);
        assert_eq!(partly.status, HoldStatus::Pending);
        let whole = given(&[
            HoldEvent::Allowance(&reserved),
            HoldEvent::Block(&first),
            HoldEvent::Block(&second),
        ]);
        assert_eq!(whole.status, HoldStatus::Held);
        assert_eq!(whole.held_seats, 3);
    }

    #[test]
    fn given_a_held_hold_when_nothing_happens_by_its_expiry_then_it_reads_expired() {
        let held = SeatBlockEvent::SeatHeld(change(&[1]));
        let track = given(&[HoldEvent::Block(&held)]);
        assert_eq!(track.status_at(t0()), HoldStatus::Held);
        assert_eq!(
            track.status_at(t0() + Duration::minutes(10)),
            HoldStatus::Expired
        );
    }

    #[test]
    fn given_a_pending_hold_when_its_expiry_passes_then_it_failed() {
        let reserved = CustomerAllowanceEvent::AllowanceReserved(change(&[1]));
        let track = given(&[HoldEvent::Allowance(&reserved)]);
        assert_eq!(
            track.status_at(t0() + Duration::minutes(11)),
            HoldStatus::Failed
        );
    }

    #[test]
    fn given_a_final_status_when_a_later_release_arrives_then_it_stays_final() {
        let held = SeatBlockEvent::SeatHeld(change(&[1]));
        let booked = SeatBlockEvent::SeatBooked(change(&[1]));
        let released = SeatBlockEvent::SeatReleased(change(&[1]));
        let track = given(&[
            HoldEvent::Block(&held),
            HoldEvent::Block(&booked),
            HoldEvent::Block(&released),
        ]);
        assert_eq!(track.status, HoldStatus::Booked);
    }

    #[test]
    fn given_a_booking_one_block_refused_when_it_is_undone_then_the_hold_ends_expired() {
        let (first, second) = (change(&[1]), change(&[40]));
        let held = [
            SeatBlockEvent::SeatHeld(first.clone()),
            SeatBlockEvent::SeatHeld(second.clone()),
        ];
        let expired_in_second = SeatBlockEvent::HoldExpired(second);
        let booked_in_first = SeatBlockEvent::SeatBooked(first.clone());
        let undone = SeatBlockEvent::BookingUndone(first);
        let reserved = CustomerAllowanceEvent::AllowanceReserved(change(&[1, 40]));
        let part_way = given(&[
            HoldEvent::Allowance(&reserved),
            HoldEvent::Block(&held[0]),
            HoldEvent::Block(&held[1]),
            HoldEvent::Block(&booked_in_first),
        ]);
        assert_eq!(
            part_way.status,
            HoldStatus::Held,
            "not booked until every seat is"
        );
        let track = given(&[
            HoldEvent::Allowance(&reserved),
            HoldEvent::Block(&held[0]),
            HoldEvent::Block(&held[1]),
            HoldEvent::Block(&expired_in_second),
            HoldEvent::Block(&booked_in_first),
            HoldEvent::Block(&undone),
        ]);
        assert_eq!(track.status, HoldStatus::Expired);
        assert_eq!(track.booked_seats, 0);
    }

    #[test]
    fn given_a_failed_hold_when_a_booking_arrives_then_it_stays_failed() {
        let returned = CustomerAllowanceEvent::AllowanceReturned {
            change: change(&[1]),
            reason: ReturnReason::HoldFailed,
        };
        let booked = SeatBlockEvent::SeatBooked(change(&[1]));
        let track = given(&[HoldEvent::Allowance(&returned), HoldEvent::Block(&booked)]);
        assert_eq!(track.status, HoldStatus::Failed);
    }

    #[test]
    fn given_block_progress_then_the_command_side_derives_the_same_statuses() {
        use HoldProgress as P;
        let exp = t0() + Duration::minutes(10);
        let reserved = AllowanceState::Reserved;
        let status = |p: Option<&[P]>, a, now| HoldStatus::from_blocks(p, a, exp, now);
        assert_eq!(
            status(Some(&[P::Booked, P::Booked]), reserved, t0()),
            HoldStatus::Booked
        );
        assert_eq!(
            status(Some(&[P::Held, P::Released]), reserved, t0()),
            HoldStatus::Released
        );
        assert_eq!(status(Some(&[P::Held]), reserved, t0()), HoldStatus::Held);
        assert_eq!(status(Some(&[P::Held]), reserved, exp), HoldStatus::Expired);
        assert_eq!(status(None, reserved, t0()), HoldStatus::Pending);
        assert_eq!(status(None, reserved, exp), HoldStatus::Failed);
        let returned = AllowanceState::Returned(ReturnReason::HoldFailed);
        assert_eq!(status(None, returned, t0()), HoldStatus::Failed);
    }

    #[test]
    fn statuses_serialize_as_the_api_and_read_models_spell_them() {
        let spelled: Vec<String> = [
            HoldStatus::Pending,
            HoldStatus::Held,
            HoldStatus::Booked,
            HoldStatus::Released,
            HoldStatus::Expired,
            HoldStatus::Failed,
        ]
        .iter()
        .map(|s| {
            serde_json::to_value(s)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
        for spelling in &spelled {
            let status = HoldStatus::try_from(spelling.clone()).unwrap();
            assert_eq!(serde_json::to_value(status).unwrap(), spelling.as_str());
        }
        assert_eq!(
            spelled,
            ["pending", "held", "booked", "released", "expired", "failed"]
        );
    }
}
