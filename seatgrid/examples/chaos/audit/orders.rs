//! The orders audit: after the faults, every order is settled the way money and seats demand.
//!
//! - every acknowledged order is stored; an acknowledged cancellation never ends confirmed;
//! - no order is left `paid` (the order process finished every one it was told of), and one
//!   still `pending_payment` is not yet due;
//! - a confirmed order has every one of its holds booked; an order without money, or refunded
//!   for lost seats or a cancellation before payment, has none booked;
//! - money without seats is being given back: a paid order that is not confirmed is refunding;
//! - nobody is charged twice: one provider payment per order at most;
//! - a booked hold that is in an order belongs to a confirmed order (nobody gets seats for an
//!   order that was not paid).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use domain::{HoldId, HoldStatus, OrderEvent, OrderStatus, RefundReason, StoredEvent};
use projections::RecordedEvent;

use super::{Acks, Findings, HoldFacts};

/// One order as its events tell it.
#[derive(Default)]
pub struct OrderFacts {
    status: Option<OrderStatus>,
    holds: Vec<HoldId>,
    payment_due: Option<DateTime<Utc>>,
    refund_reason: Option<RefundReason>,
    intents: BTreeSet<String>,
    paid: bool,
}

impl OrderFacts {
    fn follow(&mut self, e: &OrderEvent) {
        self.status = e.next_status(self.status);
        match e {
            OrderEvent::OrderPlaced(p) => {
                self.holds = p.holds.clone();
                self.payment_due = Some(p.payment_due);
            }
            OrderEvent::PaymentSucceeded { payment_intent, .. } => {
                self.paid = true;
                self.intents.extend(payment_intent.clone());
            }
            OrderEvent::RefundRequested { reason, .. } => self.refund_reason = Some(*reason),
            OrderEvent::HoldReplaced { from, to, .. } => {
                for h in &mut self.holds {
                    if h == from {
                        *h = *to;
                    }
                }
            }
            _ => {}
        }
    }

    /// The status as of `now` (an unpaid order reads expired at its due time).
    fn status_at(&self, now: DateTime<Utc>) -> Option<OrderStatus> {
        match (self.status, self.payment_due) {
            (Some(status), Some(due)) => Some(status.at(due, now)),
            (status, _) => status,
        }
    }
}

/// Every order in the store, by id.
pub fn orders(events: &[RecordedEvent]) -> HashMap<String, OrderFacts> {
    let mut orders: HashMap<String, OrderFacts> = HashMap::new();
    for e in events {
        if let Ok(Some(StoredEvent::Order(o))) =
            StoredEvent::decode(&e.aggregate_type, e.payload.get())
        {
            orders.entry(e.aggregate_id.clone()).or_default().follow(&o);
        }
    }
    orders
}

/// Whether any order is still `paid` (the order process has work left).
pub fn any_unsettled(events: &[RecordedEvent]) -> bool {
    orders(events)
        .values()
        .any(|o| o.status == Some(OrderStatus::Paid))
}

pub fn check(
    f: &mut Findings,
    events: &[RecordedEvent],
    holds: &HashMap<String, HoldFacts>,
    acks: &Acks,
    now: DateTime<Utc>,
) -> HashMap<&'static str, usize> {
    let orders = orders(events);
    let booked = |h: &HoldId| {
        holds
            .get(&h.to_string())
            .and_then(|f| f.track.as_ref())
            .is_some_and(|t| t.status == HoldStatus::Booked)
    };
    for id in acks.orders.keys() {
        f.check("acked order stored", orders.contains_key(id), || {
            format!("order {id} was acknowledged but is not stored")
        });
    }
    for id in &acks.cancelled {
        let status = orders.get(id).and_then(|o| o.status);
        f.check(
            "acked cancel kept",
            !matches!(status, Some(OrderStatus::Confirmed | OrderStatus::Paid)),
            || format!("order {id} was cancelled but ended {status:?}"),
        );
    }
    let mut by_status: HashMap<&'static str, usize> = HashMap::new();
    let mut in_orders: HashMap<HoldId, (String, Option<OrderStatus>)> = HashMap::new();
    for (id, o) in &orders {
        let status = o.status_at(now);
        *by_status
            .entry(status.map_or("unknown", |s| s.as_str()))
            .or_default() += 1;
        for h in &o.holds {
            in_orders.insert(*h, (id.clone(), status));
        }
        f.check("orders settled", status != Some(OrderStatus::Paid), || {
            format!("order {id} is still paid, its seats neither booked nor given back")
        });
        let keeps_seats = matches!(status, Some(OrderStatus::Confirmed))
            || (status == Some(OrderStatus::RefundPending)
                && o.refund_reason == Some(RefundReason::CustomerCancelled));
        if status == Some(OrderStatus::Confirmed) {
            let all = o.holds.iter().all(booked);
            f.check("paid orders have their seats", all, || {
                format!("confirmed order {id} has a hold that is not booked")
            });
        } else if !keeps_seats && status != Some(OrderStatus::PendingPayment) {
            let none = !o.holds.iter().any(booked);
            f.check("unpaid orders have no seats", none, || {
                format!("order {id} is {status:?} but a hold of it is booked")
            });
        }
        if o.paid {
            let ok = matches!(
                status,
                Some(OrderStatus::Confirmed | OrderStatus::RefundPending | OrderStatus::Refunded)
            );
            f.check("money without seats is refunded", ok, || {
                format!("order {id} was paid and is {status:?}")
            });
        }
        f.check("charged once", o.intents.len() <= 1, || {
            format!("order {id} has payments {:?}", o.intents)
        });
    }
    for (hold, facts) in holds {
        let Ok(hold) = hold.parse().map(HoldId) else {
            continue;
        };
        let is_booked = facts
            .track
            .as_ref()
            .is_some_and(|t| t.status == HoldStatus::Booked);
        if let (true, Some((order, status))) = (is_booked, in_orders.get(&hold)) {
            let paid_for = matches!(
                status,
                Some(OrderStatus::Confirmed | OrderStatus::RefundPending)
            );
            f.check("booked seats are paid for", paid_for, || {
                format!("hold {hold} is booked but its order {order} is {status:?}")
            });
        }
    }
    by_status
}
