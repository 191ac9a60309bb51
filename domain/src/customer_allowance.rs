//! The customer allowance: how many seats one customer holds or has booked for one ticketed event.
//!
//! Policy:
//! - A customer may have at most the event's `max_seats_per_customer` seats held (under holds that
//!   have not expired) plus booked. The allowance is reserved **no later than** seats are held
//!   (the core commits the reservation in the same transaction as the hold's first seat block)
//!   and committed **before** they are booked, and returned only after seats were released or a
//!   hold failed. A crash between two steps therefore leaves the count too high, never too low:
//!   the limit can be met early, never exceeded.
//! - An unexpired reservation counts; an expired one stops counting by itself (no event needed).
//! - The allowance is also the directory of a customer's holds: each entry knows its seats and
//!   expiry, which lets the hold be found and checked for ownership.
//! - A reservation's expiry follows its hold's when an order extends it (`Extend`, a no-op for
//!   a committed or already long enough one).
//! - Its state stays bounded whatever the customer's history: entries that no longer count
//!   (returned, or reserved and expired for [`FORGET_AFTER`]) are forgotten beyond the last
//!   [`INACTIVE_KEPT`]. An older hold is looked up from its own events (the core's hold-filtered
//!   loads), and the core never re-sends a forgotten hold.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{CustomerId, EventId, HoldId, SeatId};
use crate::seat_block::HoldChange;
use crate::stored::names::{aggregate_type, event_type};
use crate::EVENT_SCHEMA_VERSION;

impl CustomerAllowance {
    /// The aggregate id: one allowance per (ticketed event, customer).
    pub fn aggregate_id(event_id: EventId, customer_id: &CustomerId) -> String {
        format!("{event_id}/{customer_id}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnReason {
    /// The customer released the hold.
    Released,
    /// Taking the seats failed (some were not available), so the hold never existed.
    HoldFailed,
    /// The booking was refused by the seat blocks (expired or released meanwhile).
    BookingFailed,
}

impl ReturnReason {
    /// The stored spelling (`released`, `hold_failed`, `booking_failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Released => "released",
            Self::HoldFailed => "hold_failed",
            Self::BookingFailed => "booking_failed",
        }
    }
}

#[derive(Debug, Clone)]
pub enum CustomerAllowanceCommand {
    Reserve {
        event_id: EventId,
        customer_id: CustomerId,
        hold_id: HoldId,
        seats: Vec<SeatId>,
        expires_at: DateTime<Utc>,
        limit: u32,
        now: DateTime<Utc>,
    },
    Commit {
        hold_id: HoldId,
        decided_at: DateTime<Utc>,
    },
    /// The hold's expiry moved to `until` (see `SeatBlockCommand::ExtendHold`).
    Extend {
        hold_id: HoldId,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    Return {
        hold_id: HoldId,
        reason: ReturnReason,
        now: DateTime<Utc>,
    },
}

/// Domain events of a customer allowance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CustomerAllowanceEvent {
    AllowanceReserved(HoldChange),
    AllowanceCommitted(HoldChange),
    AllowanceExtended(HoldChange),
    AllowanceReturned {
        #[serde(flatten)]
        change: HoldChange,
        reason: ReturnReason,
    },
}

impl CustomerAllowanceEvent {
    /// The hold this entry is about.
    pub fn change(&self) -> &HoldChange {
        match self {
            Self::AllowanceReserved(c)
            | Self::AllowanceCommitted(c)
            | Self::AllowanceExtended(c)
            | Self::AllowanceReturned { change: c, .. } => c,
        }
    }
}

impl DomainEvent for CustomerAllowanceEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AllowanceReserved(_) => event_type::ALLOWANCE_RESERVED,
            Self::AllowanceCommitted(_) => event_type::ALLOWANCE_COMMITTED,
            Self::AllowanceExtended(_) => event_type::ALLOWANCE_EXTENDED,
            Self::AllowanceReturned { .. } => event_type::ALLOWANCE_RETURNED,
        }
        .into()
    }
    fn event_version(&self) -> String {
        EVENT_SCHEMA_VERSION.into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowanceError {
    #[error("customer may hold or book at most {limit} seats for this event; {in_use} in use, {requested} requested")]
    LimitExceeded {
        limit: u32,
        in_use: u32,
        requested: u32,
    },
    #[error("hold {0} is unknown to this customer")]
    HoldNotFound(HoldId),
    #[error("hold {0} has expired")]
    HoldExpired(HoldId),
    #[error("hold {0} is closed")]
    HoldClosed(HoldId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AllowanceState {
    Reserved,
    Committed,
    Returned(ReturnReason),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowanceEntry {
    pub change: HoldChange,
    pub state: AllowanceState,
    /// When the booking was decided (the instant every block judges it at), once committed.
    #[serde(default)]
    pub decided_at: Option<DateTime<Utc>>,
}

/// How many entries that no longer count an allowance remembers (see the module policy).
pub const INACTIVE_KEPT: usize = 32;

/// How long after its expiry a reservation that was neither committed nor returned may still be
/// committed by a booking decided before the expiry (a booking's steps take milliseconds).
pub const FORGET_AFTER: chrono::Duration = chrono::Duration::minutes(10);

impl AllowanceEntry {
    fn seats_in_use(&self, now: DateTime<Utc>) -> u32 {
        let counts = match self.state {
            AllowanceState::Committed => true,
            AllowanceState::Reserved => now < self.change.expires_at,
            AllowanceState::Returned(_) => false,
        };
        if counts {
            self.change.seats.len() as u32
        } else {
            0
        }
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct CustomerAllowance {
    entries: HashMap<HoldId, AllowanceEntry>,
    /// Entries that no longer count, oldest first.
    #[serde(default)]
    inactive: std::collections::VecDeque<HoldId>,
}

impl CustomerAllowance {
    pub fn entry(&self, hold_id: HoldId) -> Option<&AllowanceEntry> {
        self.entries.get(&hold_id)
    }

    pub fn seats_in_use(&self, now: DateTime<Utc>) -> u32 {
        self.entries.values().map(|e| e.seats_in_use(now)).sum()
    }

    /// Holds committed for a booking whose hold expired before `before`: either booked, or a
    /// booking that never finished (its server stopped between the two appends).
    pub fn committed_expired_before(
        &self,
        before: DateTime<Utc>,
    ) -> impl Iterator<Item = &AllowanceEntry> {
        self.entries
            .values()
            .filter(move |e| e.state == AllowanceState::Committed && e.change.expires_at < before)
    }

    /// How many entries the allowance remembers: bounded, see the module policy.
    pub fn remembered_entries(&self) -> usize {
        self.entries.len()
    }

    /// Marks an entry as no longer counting; the oldest such entries beyond [`INACTIVE_KEPT`] go.
    fn forget_later(&mut self, hold_id: HoldId) {
        if !self.inactive.contains(&hold_id) {
            self.inactive.push_back(hold_id);
        }
        while self.inactive.len() > INACTIVE_KEPT {
            if let Some(gone) = self.inactive.pop_front() {
                self.entries.remove(&gone);
            }
        }
    }

    fn found(&self, hold_id: HoldId) -> Result<&AllowanceEntry, AllowanceError> {
        self.entries
            .get(&hold_id)
            .ok_or(AllowanceError::HoldNotFound(hold_id))
    }
}

impl Aggregate for CustomerAllowance {
    const TYPE: &'static str = aggregate_type::CUSTOMER_ALLOWANCE;
    type Command = CustomerAllowanceCommand;
    type Event = CustomerAllowanceEvent;
    type Error = AllowanceError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            CustomerAllowanceCommand::Reserve {
                event_id,
                customer_id,
                hold_id,
                seats,
                expires_at,
                limit,
                now,
            } => {
                if self.entries.contains_key(&hold_id) {
                    return Ok(());
                }
                let in_use = self.seats_in_use(now);
                let requested = seats.len() as u32;
                if in_use + requested > limit {
                    return Err(AllowanceError::LimitExceeded {
                        limit,
                        in_use,
                        requested,
                    });
                }
                let change = HoldChange {
                    event_id,
                    hold_id,
                    customer_id,
                    seats,
                    expires_at,
                    at: now,
                };
                sink.write(CustomerAllowanceEvent::AllowanceReserved(change), self)
                    .await;
                Ok(())
            }
            CustomerAllowanceCommand::Commit {
                hold_id,
                decided_at,
            } => {
                let entry = self.found(hold_id)?;
                match entry.state {
                    AllowanceState::Committed => Ok(()),
                    AllowanceState::Returned(_) => Err(AllowanceError::HoldClosed(hold_id)),
                    AllowanceState::Reserved if decided_at >= entry.change.expires_at => {
                        Err(AllowanceError::HoldExpired(hold_id))
                    }
                    AllowanceState::Reserved => {
                        let change = HoldChange {
                            at: decided_at,
                            ..entry.change.clone()
                        };
                        sink.write(CustomerAllowanceEvent::AllowanceCommitted(change), self)
                            .await;
                        Ok(())
                    }
                }
            }
            CustomerAllowanceCommand::Extend {
                hold_id,
                until,
                now,
            } => {
                let entry = self.found(hold_id)?;
                match entry.state {
                    AllowanceState::Returned(_) => Err(AllowanceError::HoldClosed(hold_id)),
                    AllowanceState::Committed => Ok(()),
                    AllowanceState::Reserved if now >= entry.change.expires_at => {
                        Err(AllowanceError::HoldExpired(hold_id))
                    }
                    AllowanceState::Reserved if until <= entry.change.expires_at => Ok(()),
                    AllowanceState::Reserved => {
                        let change = HoldChange {
                            expires_at: until,
                            at: now,
                            ..entry.change.clone()
                        };
                        sink.write(CustomerAllowanceEvent::AllowanceExtended(change), self)
                            .await;
                        Ok(())
                    }
                }
            }
            CustomerAllowanceCommand::Return {
                hold_id,
                reason,
                now,
            } => {
                let entry = self.found(hold_id)?;
                if matches!(entry.state, AllowanceState::Returned(_)) {
                    return Ok(());
                }
                let change = HoldChange {
                    at: now,
                    ..entry.change.clone()
                };
                sink.write(
                    CustomerAllowanceEvent::AllowanceReturned { change, reason },
                    self,
                )
                .await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CustomerAllowanceEvent::AllowanceReserved(change) => {
                let lapsed: Vec<HoldId> = self
                    .entries
                    .iter()
                    .filter(|(_, e)| {
                        e.state == AllowanceState::Reserved
                            && e.change.expires_at + FORGET_AFTER < change.at
                    })
                    .map(|(id, _)| *id)
                    .collect();
                for id in lapsed {
                    self.forget_later(id);
                }
                self.entries.insert(
                    change.hold_id,
                    AllowanceEntry {
                        change,
                        state: AllowanceState::Reserved,
                        decided_at: None,
                    },
                );
            }
            CustomerAllowanceEvent::AllowanceExtended(change) => {
                if let Some(e) = self.entries.get_mut(&change.hold_id) {
                    e.change.expires_at = change.expires_at;
                }
            }
            CustomerAllowanceEvent::AllowanceCommitted(change) => {
                if let Some(e) = self.entries.get_mut(&change.hold_id) {
                    e.state = AllowanceState::Committed;
                    e.decided_at = Some(change.at);
                }
            }
            CustomerAllowanceEvent::AllowanceReturned { change, reason } => {
                if let Some(e) = self.entries.get_mut(&change.hold_id) {
                    e.state = AllowanceState::Returned(reason);
                    self.forget_later(change.hold_id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }
    fn hold(n: u128) -> HoldId {
        HoldId(Uuid::from_u128(n))
    }
    fn change(h: u128, n: u32, expires: i64, at: i64) -> HoldChange {
        HoldChange {
            event_id: EventId(Uuid::from_u128(7)),
            hold_id: hold(h),
            customer_id: CustomerId::parse("alice").unwrap(),
            seats: (0..n).map(SeatId).collect(),
            expires_at: t(expires),
            at: t(at),
        }
    }
    fn reserve(h: u128, n: u32, now: i64) -> CustomerAllowanceCommand {
        let c = change(h, n, now + 600, now);
        CustomerAllowanceCommand::Reserve {
            event_id: c.event_id,
            customer_id: c.customer_id,
            hold_id: c.hold_id,
            seats: c.seats,
            expires_at: c.expires_at,
            limit: 10,
            now: c.at,
        }
    }

    #[test]
    fn given_nothing_when_reserving_within_limit_then_reserved() {
        TestFramework::<CustomerAllowance>::with(())
            .given_no_previous_events()
            .when(reserve(1, 10, 0))
            .then_expect_events(vec![CustomerAllowanceEvent::AllowanceReserved(change(
                1, 10, 600, 0,
            ))]);
    }

    #[test]
    fn when_one_request_asks_for_more_than_the_limit_then_refused() {
        TestFramework::<CustomerAllowance>::with(())
            .given_no_previous_events()
            .when(reserve(1, 11, 0))
            .then_expect_error(AllowanceError::LimitExceeded {
                limit: 10,
                in_use: 0,
                requested: 11,
            });
    }

    #[test]
    fn given_held_and_booked_seats_when_over_the_limit_then_refused() {
        TestFramework::<CustomerAllowance>::with(())
            .given(vec![
                CustomerAllowanceEvent::AllowanceReserved(change(1, 4, 600, 0)),
                CustomerAllowanceEvent::AllowanceReserved(change(2, 3, 700, 100)),
                CustomerAllowanceEvent::AllowanceCommitted(change(2, 3, 700, 150)),
            ])
            .when(reserve(3, 4, 200))
            .then_expect_error(AllowanceError::LimitExceeded {
                limit: 10,
                in_use: 7,
                requested: 4,
            });
    }

    #[test]
    fn given_expired_and_returned_holds_when_reserving_then_they_no_longer_count() {
        TestFramework::<CustomerAllowance>::with(())
            .given(vec![
                CustomerAllowanceEvent::AllowanceReserved(change(1, 6, 600, 0)),
                CustomerAllowanceEvent::AllowanceReserved(change(2, 4, 900, 300)),
                CustomerAllowanceEvent::AllowanceReturned {
                    change: change(2, 4, 900, 310),
                    reason: ReturnReason::Released,
                },
            ])
            .when(reserve(3, 10, 600))
            .then_expect_events(vec![CustomerAllowanceEvent::AllowanceReserved(change(
                3, 10, 1200, 600,
            ))]);
    }

    #[test]
    fn given_reservation_when_reserved_again_then_no_op() {
        TestFramework::<CustomerAllowance>::with(())
            .given(vec![CustomerAllowanceEvent::AllowanceReserved(change(
                1, 10, 600, 0,
            ))])
            .when(reserve(1, 10, 1))
            .then_expect_events(vec![]);
    }

    #[test]
    fn given_reservation_when_committed_before_expiry_then_committed_else_refused() {
        let given = || {
            vec![CustomerAllowanceEvent::AllowanceReserved(change(
                1, 2, 600, 0,
            ))]
        };
        TestFramework::<CustomerAllowance>::with(())
            .given(given())
            .when(CustomerAllowanceCommand::Commit {
                hold_id: hold(1),
                decided_at: t(599),
            })
            .then_expect_events(vec![CustomerAllowanceEvent::AllowanceCommitted(change(
                1, 2, 600, 599,
            ))]);
        TestFramework::<CustomerAllowance>::with(())
            .given(given())
            .when(CustomerAllowanceCommand::Commit {
                hold_id: hold(1),
                decided_at: t(600),
            })
            .then_expect_error(AllowanceError::HoldExpired(hold(1)));
        TestFramework::<CustomerAllowance>::with(())
            .given_no_previous_events()
            .when(CustomerAllowanceCommand::Commit {
                hold_id: hold(1),
                decided_at: t(1),
            })
            .then_expect_error(AllowanceError::HoldNotFound(hold(1)));
    }

    #[test]
    fn given_returned_hold_when_committed_then_closed_and_return_again_is_no_op() {
        let given = || {
            vec![
                CustomerAllowanceEvent::AllowanceReserved(change(1, 2, 600, 0)),
                CustomerAllowanceEvent::AllowanceReturned {
                    change: change(1, 2, 600, 5),
                    reason: ReturnReason::Released,
                },
            ]
        };
        TestFramework::<CustomerAllowance>::with(())
            .given(given())
            .when(CustomerAllowanceCommand::Commit {
                hold_id: hold(1),
                decided_at: t(6),
            })
            .then_expect_error(AllowanceError::HoldClosed(hold(1)));
        TestFramework::<CustomerAllowance>::with(())
            .given(given())
            .when(CustomerAllowanceCommand::Return {
                hold_id: hold(1),
                reason: ReturnReason::Released,
                now: t(7),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn given_a_long_history_then_the_allowance_remembers_what_counts_and_few_others() {
        let mut allowance = CustomerAllowance::default();
        allowance.apply(CustomerAllowanceEvent::AllowanceReserved(change(
            9_000, 2, 600, 0,
        )));
        allowance.apply(CustomerAllowanceEvent::AllowanceCommitted(change(
            9_000, 2, 600, 5,
        )));
        for n in 0..500u128 {
            let at = 10 + 2 * n as i64;
            allowance.apply(CustomerAllowanceEvent::AllowanceReserved(change(
                n,
                1,
                at + 600,
                at,
            )));
            if n % 2 == 0 {
                let returned = CustomerAllowanceEvent::AllowanceReturned {
                    change: change(n, 1, at + 600, at + 1),
                    reason: ReturnReason::Released,
                };
                allowance.apply(returned);
            }
        }
        // Odd holds simply expired; those long past are forgotten like the returned ones.
        assert!(allowance.remembered_entries() <= 1 + INACTIVE_KEPT + 400);
        let later = t(10_000);
        allowance.apply(CustomerAllowanceEvent::AllowanceReserved(change(
            9_001, 1, 10_600, 10_000,
        )));
        assert_eq!(allowance.remembered_entries(), 1 + INACTIVE_KEPT + 1);
        // The booking still counts, and knows when it was decided.
        assert_eq!(allowance.seats_in_use(later), 3);
        assert_eq!(allowance.entry(hold(9_000)).unwrap().decided_at, Some(t(5)));
        assert!(allowance.entry(hold(0)).is_none());
    }

    #[test]
    fn given_a_reservation_when_extended_then_it_counts_and_commits_until_the_new_expiry() {
        let extend = |until: i64, now: i64| CustomerAllowanceCommand::Extend {
            hold_id: hold(1),
            until: t(until),
            now: t(now),
        };
        let reserved = CustomerAllowanceEvent::AllowanceReserved(change(1, 2, 600, 0));
        let extended = CustomerAllowanceEvent::AllowanceExtended(change(1, 2, 1_500, 100));
        TestFramework::<CustomerAllowance>::with(())
            .given(vec![reserved.clone()])
            .when(extend(1_500, 100))
            .then_expect_events(vec![extended.clone()]);
        TestFramework::<CustomerAllowance>::with(())
            .given(vec![reserved.clone()])
            .when(extend(1_500, 600))
            .then_expect_error(AllowanceError::HoldExpired(hold(1)));
        TestFramework::<CustomerAllowance>::with(())
            .given(vec![reserved.clone(), extended.clone()])
            .when(CustomerAllowanceCommand::Commit {
                hold_id: hold(1),
                decided_at: t(1_000),
            })
            .then_expect_events(vec![CustomerAllowanceEvent::AllowanceCommitted(change(
                1, 2, 1_500, 1_000,
            ))]);
        let mut allowance = CustomerAllowance::default();
        allowance.apply(reserved);
        allowance.apply(extended);
        assert_eq!(allowance.seats_in_use(t(1_000)), 2);
    }
}
