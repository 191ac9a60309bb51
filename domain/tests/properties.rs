//! Property-based specification of a seat block: random sequences of hold, book, release, expire
//! and the passing of time, on blocks of random size, never give a seat two owners and always
//! agree with a simple model of what a seat block should do.
//!
//! The model: a hold takes its seats if none of them is taken now; a seat is taken while a hold
//! owning it is booked, or held and not yet expired; the hold's customer may book it while it is
//! held and unexpired (again: a no-op), and release it while it is held.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::test::TestFramework;
use domain::{
    CustomerId, EventId, HoldId, SeatBlock, SeatBlockCommand, SeatBlockEvent, SeatId, SeatStatus,
};
use proptest::prelude::*;
use uuid::Uuid;

#[derive(Debug, Clone)]
enum Op {
    Hold {
        customer: u8,
        seats: Vec<u32>,
        ttl: i64,
    },
    Book {
        hold: usize,
        by_owner: bool,
    },
    Release {
        hold: usize,
        by_owner: bool,
    },
    Expire,
    Wait(i64),
}

fn op(block_size: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, proptest::collection::btree_set(0..block_size, 1..=4), 1i64..120)
            .prop_map(|(customer, seats, ttl)| Op::Hold { customer, seats: seats.into_iter().collect(), ttl }),
        2 => (0usize..16, proptest::bool::weighted(0.85)).prop_map(|(hold, by_owner)| Op::Book { hold, by_owner }),
        1 => (0usize..16, proptest::bool::weighted(0.85)).prop_map(|(hold, by_owner)| Op::Release { hold, by_owner }),
        1 => Just(Op::Expire),
        2 => (0i64..90).prop_map(Op::Wait),
    ]
}

fn scenario() -> impl Strategy<Value = (u32, u32, Vec<Op>)> {
    (1u32..=24, 0u32..1_000).prop_flat_map(|(size, first)| {
        (
            Just(size),
            Just(first),
            proptest::collection::vec(op(size), 1..40),
        )
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Held,
    Booked,
    Released,
}

#[derive(Debug, Clone)]
struct ModelHold {
    id: HoldId,
    customer: CustomerId,
    seats: Vec<SeatId>,
    expires_at: DateTime<Utc>,
    state: State,
}

impl ModelHold {
    fn live(&self, now: DateTime<Utc>) -> bool {
        self.state == State::Booked || (self.state == State::Held && now < self.expires_at)
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
}

fn customer(n: u8) -> CustomerId {
    CustomerId::parse(&format!("fan{n}")).unwrap()
}

/// Runs `command` against the block made of `history`, returning its new events.
fn run(
    history: &[SeatBlockEvent],
    command: SeatBlockCommand,
) -> Result<Vec<SeatBlockEvent>, domain::SeatBlockError> {
    TestFramework::<SeatBlock>::with(())
        .given(history.to_vec())
        .when(command)
        .inspect_result()
}

fn model_status(holds: &[ModelHold], seat: SeatId, now: DateTime<Utc>) -> SeatStatus {
    match holds
        .iter()
        .find(|h| h.live(now) && h.seats.contains(&seat))
    {
        None => SeatStatus::Available,
        Some(h) if h.state == State::Booked => SeatStatus::Booked,
        Some(_) => SeatStatus::Held,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn given_any_sequence_then_no_seat_has_two_owners_and_the_block_agrees_with_the_model(
        (size, first, ops) in scenario()
    ) {
        let event_id = EventId(Uuid::from_u128(1));
        let mut history: Vec<SeatBlockEvent> = Vec::new();
        let mut holds: Vec<ModelHold> = Vec::new();
        let mut now = 0i64;
        for (n, op) in ops.into_iter().enumerate() {
            let t = at(now);
            match op {
                Op::Wait(dt) => now += dt,
                Op::Expire => {
                    history.extend(run(&history, SeatBlockCommand::ExpireHolds { now: t }).unwrap());
                }
                Op::Hold { customer: c, seats, ttl } => {
                    let seats: Vec<SeatId> = seats.iter().map(|s| SeatId(first + s)).collect();
                    let free = seats.iter().all(|s| model_status(&holds, *s, t) == SeatStatus::Available);
                    let id = HoldId(Uuid::from_u128(100 + n as u128));
                    let result = run(&history, SeatBlockCommand::HoldSeats {
                        event_id,
                        hold_id: id,
                        customer_id: customer(c),
                        seats: seats.clone(),
                        expires_at: at(now + ttl),
                        now: t,
                    });
                    prop_assert_eq!(result.is_ok(), free, "hold {:?} at {}", seats, now);
                    if let Ok(events) = result {
                        history.extend(events);
                        holds.push(ModelHold { id, customer: customer(c), seats, expires_at: at(now + ttl), state: State::Held });
                    }
                }
                Op::Book { hold, by_owner } if !holds.is_empty() => {
                    let hold = hold % holds.len();
                    let h = holds[hold].clone();
                    let who = if by_owner { h.customer.clone() } else { customer(9) };
                    let result = run(&history, SeatBlockCommand::BookHold { hold_id: h.id, customer_id: who, decided_at: t });
                    let may = by_owner && (h.state == State::Booked || (h.state == State::Held && t < h.expires_at));
                    prop_assert_eq!(result.is_ok(), may, "book {:?} at {} by owner {}", h.state, now, by_owner);
                    if let Ok(events) = result {
                        history.extend(events);
                        holds[hold].state = State::Booked;
                    }
                }
                Op::Release { hold, by_owner } if !holds.is_empty() => {
                    let hold = hold % holds.len();
                    let h = holds[hold].clone();
                    let who = if by_owner { h.customer.clone() } else { customer(9) };
                    let result = run(&history, SeatBlockCommand::ReleaseHold { hold_id: h.id, customer_id: who, now: t });
                    if h.state == State::Booked || !by_owner {
                        prop_assert!(result.is_err(), "release of a booked or someone else's hold");
                    }
                    if let Ok(events) = result {
                        history.extend(events);
                        if h.state == State::Held {
                            holds[hold].state = State::Released;
                        }
                    }
                }
                Op::Book { .. } | Op::Release { .. } => {}
            }
            // The block, rebuilt from its events, agrees with the model on every seat now.
            let mut block = SeatBlock::default();
            for e in &history {
                cqrs_es::Aggregate::apply(&mut block, e.clone());
            }
            let t = at(now);
            for s in first..first + size {
                prop_assert_eq!(block.seat_status(SeatId(s), t), model_status(&holds, SeatId(s), t), "seat {} at {}", s, now);
            }
        }
        // And across the whole history, no seat was ever taken while another hold kept it.
        let mut owners: BTreeMap<SeatId, (HoldId, DateTime<Utc>, bool)> = BTreeMap::new();
        for e in &history {
            match e {
                SeatBlockEvent::SeatHeld(c) => {
                    for s in &c.seats {
                        if let Some((other, expires, booked)) = owners.get(s) {
                            prop_assert!(!(*booked || c.at < *expires), "seat {:?} of {:?} taken by {:?}", s, other, c.hold_id);
                        }
                        owners.insert(*s, (c.hold_id, c.expires_at, false));
                    }
                }
                SeatBlockEvent::SeatBooked(c) => {
                    for s in &c.seats {
                        let owner = owners.get_mut(s).expect("a booked seat was held");
                        prop_assert_eq!(owner.0, c.hold_id);
                        owner.2 = true;
                    }
                }
                other => {
                    // Released, expired or undone: the hold's seats are free again.
                    let c = other.change();
                    for s in &c.seats {
                        if owners.get(s).is_some_and(|o| o.0 == c.hold_id) {
                            owners.remove(s);
                        }
                    }
                }
            }
        }
    }
}
