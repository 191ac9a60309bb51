//! The order: a customer's purchase of the seats of one or more of their holds, from placement
//! through payment to confirmed seats, or to a failure, expiry, cancellation or refund.
//!
//! Policy:
//! - An order is placed for one ticketed event from holds of its own customer, with at least one
//!   seat; its amount is the sum of its seats' prices, computed with checked arithmetic (an
//!   amount that does not fit is refused). Payment is due by `payment_due`.
//! - Statuses: `pending_payment`, then `paid` (money taken), then `confirmed` (every seat booked).
//!   Without money: `payment_failed`, `expired` (nothing by `payment_due`) or `cancelled` (by
//!   the customer). With money but no seats: `refund_pending`, then `refunded`.
//! - Money taken is never lost and never kept without seats: a payment success is recorded in any
//!   status. After `expired` or `payment_failed` it makes the order `paid` (the seats are then
//!   booked again if still free, else refunded); after `cancelled` it makes it `refund_pending`.
//!   A failure after a success changes nothing.
//! - Each provider result counts once: results are keyed by the provider's event id, and one
//!   seen before is a no-op (providers deliver twice, late and out of order).
//! - Expiry is lazy, as for holds: an order still waiting at `payment_due` reads `expired`
//!   ([`Order::status_at`]) whether or not `OrderExpired` was recorded; a payment arriving later
//!   is still recorded (see above).
//! - A paid order's hold that lapsed before the money arrived may be replaced by a new hold on
//!   the same seats (`HoldReplaced`, while `paid` only); [`Order::holds`] is the order's holds now.
//! - A customer may cancel before paying (the holds are released) or after confirmation (the
//!   payment is refunded, then the seats go back on sale); while a payment is being turned into
//!   seats (`paid`) the order cannot be cancelled.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::ids::{HoldId, OrderId, SeatId};
use crate::layout::VenueLayout;
use crate::stored::names::aggregate_type;

pub use crate::order_messages::{OrderCommand, OrderEvent, OrderPlaced, OrderStatus, RefundReason};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("an order needs at least one hold and one seat")]
    Empty,
    #[error("seat {0} is not in this event's layout")]
    UnknownSeat(SeatId),
    #[error("the order's amount does not fit in 64 bits of cents")]
    AmountOverflow,
    #[error("order {0} was already placed with other contents")]
    OrderIdReused(OrderId),
    #[error("the order does not exist")]
    NotFound,
    #[error("order {0} belongs to another customer")]
    NotOrderOwner(OrderId),
    #[error("order {0} is {1:?} and cannot {2}")]
    WrongStatus(OrderId, OrderStatus, &'static str),
}

/// The amount of `seats` at the layout's prices, or why it cannot be computed.
pub fn price(layout: &VenueLayout, seats: &[SeatId]) -> Result<u64, OrderError> {
    let prices: Vec<u64> = seats
        .iter()
        .map(|s| {
            layout
                .label(*s)
                .map(|l| l.price_cents)
                .ok_or(OrderError::UnknownSeat(*s))
        })
        .collect::<Result<_, _>>()?;
    total(prices)
}

/// The sum of some prices, refused if it does not fit (layouts cap a price, not a sum).
fn total(prices: impl IntoIterator<Item = u64>) -> Result<u64, OrderError> {
    prices.into_iter().try_fold(0u64, |sum, p| {
        sum.checked_add(p).ok_or(OrderError::AmountOverflow)
    })
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Order {
    placed: Option<OrderPlaced>,
    status: Option<OrderStatus>,
    /// Provider event ids already recorded (each result counts once).
    seen: BTreeSet<String>,
    refund_reason: Option<RefundReason>,
    /// The provider's payment, once it took the request (or once one succeeded).
    payment_intent: Option<String>,
    /// Where the buyer pays, as the provider said.
    #[serde(default)]
    payment_url: Option<String>,
    /// Holds replaced since placement (`from` -> `to`).
    #[serde(default)]
    replaced: Vec<(HoldId, HoldId)>,
}

impl Order {
    pub fn placed(&self) -> Option<&OrderPlaced> {
        self.placed.as_ref()
    }
    pub fn status(&self) -> Option<OrderStatus> {
        self.status
    }

    /// The status as of `now`: an order still waiting for its payment at `payment_due` has
    /// expired, whether or not `OrderExpired` was recorded yet (its holds expire then too).
    pub fn status_at(&self, now: DateTime<Utc>) -> Option<OrderStatus> {
        match (self.status, &self.placed) {
            (Some(status), Some(p)) => Some(status.at(p.payment_due, now)),
            (status, _) => status,
        }
    }
    pub fn refund_reason(&self) -> Option<RefundReason> {
        self.refund_reason
    }
    /// The provider's payment id, once the provider took the request.
    pub fn payment_intent(&self) -> Option<&str> {
        self.payment_intent.as_deref()
    }
    /// Where the buyer pays, once the provider said.
    pub fn payment_url(&self) -> Option<&str> {
        self.payment_url.as_deref()
    }

    /// The order's holds now: as placed, with replacements applied.
    pub fn holds(&self) -> Vec<HoldId> {
        let Some(placed) = &self.placed else {
            return Vec::new();
        };
        placed
            .holds
            .iter()
            .map(|h| {
                // Replacements in the order they happened: one pass follows every chain.
                self.replaced.iter().fold(
                    *h,
                    |current, (from, to)| if current == *from { *to } else { current },
                )
            })
            .collect()
    }

    fn current(&self) -> Result<(&OrderPlaced, OrderStatus), OrderError> {
        match (&self.placed, self.status) {
            (Some(p), Some(s)) => Ok((p, s)),
            _ => Err(OrderError::NotFound),
        }
    }

    fn wrong(&self, status: OrderStatus, doing: &'static str) -> OrderError {
        match &self.placed {
            Some(p) => OrderError::WrongStatus(p.order_id, status, doing),
            None => OrderError::NotFound,
        }
    }

    async fn payment_succeeded(
        &mut self,
        provider_event_id: String,
        payment_intent: Option<String>,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), OrderError> {
        let (_, status) = self.current()?;
        if self.seen.contains(&provider_event_id) {
            return Ok(());
        }
        let at = now;
        let refund_intent = self.payment_intent.clone().or(payment_intent.clone());
        let mut events = vec![OrderEvent::PaymentSucceeded {
            provider_event_id,
            payment_intent,
            at,
        }];
        if status == OrderStatus::Cancelled {
            events.push(OrderEvent::RefundRequested {
                reason: RefundReason::CancelledBeforePayment,
                payment_intent: refund_intent,
                at,
            });
        }
        for e in events {
            sink.write(e, self).await;
        }
        Ok(())
    }
}

impl Aggregate for Order {
    const TYPE: &'static str = aggregate_type::ORDER;
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        use OrderStatus::*;
        match command {
            OrderCommand::Place(placed) => {
                if placed.holds.is_empty() || placed.seats.is_empty() {
                    return Err(OrderError::Empty);
                }
                if let Some(existing) = &self.placed {
                    return if *existing == placed {
                        Ok(())
                    } else {
                        Err(OrderError::OrderIdReused(placed.order_id))
                    };
                }
                sink.write(OrderEvent::OrderPlaced(placed), self).await;
                Ok(())
            }
            OrderCommand::RecordPaymentRequested {
                payment_intent,
                payment_url,
                now,
            } => {
                self.current()?;
                if self.payment_intent.is_some() {
                    return Ok(());
                }
                let e = OrderEvent::PaymentRequested {
                    payment_intent,
                    payment_url,
                    at: now,
                };
                sink.write(e, self).await;
                Ok(())
            }
            OrderCommand::RecordPaymentSucceeded {
                provider_event_id,
                payment_intent,
                now,
            } => {
                self.payment_succeeded(provider_event_id, payment_intent, now, sink)
                    .await
            }
            OrderCommand::RecordPaymentFailed {
                provider_event_id,
                reason,
                now,
            } => {
                let (_, status) = self.current()?;
                if self.seen.contains(&provider_event_id) || status != PendingPayment {
                    return Ok(());
                }
                let e = OrderEvent::PaymentFailed {
                    provider_event_id,
                    reason,
                    at: now,
                };
                sink.write(e, self).await;
                Ok(())
            }
            OrderCommand::Confirm { now } => match self.current()?.1 {
                Confirmed => Ok(()),
                Paid => {
                    sink.write(OrderEvent::OrderConfirmed { at: now }, self)
                        .await;
                    Ok(())
                }
                other => Err(self.wrong(other, "be confirmed")),
            },
            OrderCommand::Expire { now } => {
                let (placed, status) = self.current()?;
                if status == PendingPayment && now >= placed.payment_due {
                    sink.write(OrderEvent::OrderExpired { at: now }, self).await;
                }
                Ok(())
            }
            OrderCommand::Cancel { customer_id, now } => {
                let (placed, status) = self.current()?;
                if placed.customer_id != customer_id {
                    return Err(OrderError::NotOrderOwner(placed.order_id));
                }
                let event = match status {
                    PendingPayment => OrderEvent::OrderCancelled { at: now },
                    Confirmed => OrderEvent::RefundRequested {
                        reason: RefundReason::CustomerCancelled,
                        payment_intent: self.payment_intent.clone(),
                        at: now,
                    },
                    Cancelled | RefundPending | Refunded | Expired | PaymentFailed => return Ok(()),
                    Paid => return Err(self.wrong(Paid, "be cancelled while its seats are booked")),
                };
                sink.write(event, self).await;
                Ok(())
            }
            OrderCommand::RefundSeatsLost { now } => match self.current()?.1 {
                RefundPending | Refunded => Ok(()),
                Paid => {
                    let e = OrderEvent::RefundRequested {
                        reason: RefundReason::SeatsLost,
                        payment_intent: self.payment_intent.clone(),
                        at: now,
                    };
                    sink.write(e, self).await;
                    Ok(())
                }
                other => Err(self.wrong(other, "be refunded for lost seats")),
            },
            OrderCommand::RecordRefunded {
                provider_event_id,
                now,
            } => match self.current()?.1 {
                Refunded => Ok(()),
                RefundPending => {
                    let e = OrderEvent::OrderRefunded {
                        provider_event_id,
                        at: now,
                    };
                    sink.write(e, self).await;
                    Ok(())
                }
                other => Err(self.wrong(other, "be marked refunded")),
            },
            OrderCommand::ReplaceHold { from, to, now } => match self.current()?.1 {
                Paid if self.holds().contains(&from) => {
                    sink.write(OrderEvent::HoldReplaced { from, to, at: now }, self)
                        .await;
                    Ok(())
                }
                Paid if self.holds().contains(&to) => Ok(()),
                other => Err(self.wrong(other, "take a replacement hold")),
            },
        }
    }

    fn apply(&mut self, event: Self::Event) {
        self.status = event.next_status(self.status);
        match event {
            OrderEvent::OrderPlaced(p) => self.placed = Some(p),
            OrderEvent::PaymentSucceeded {
                provider_event_id,
                payment_intent,
                ..
            } => {
                self.seen.insert(provider_event_id);
                if self.payment_intent.is_none() {
                    self.payment_intent = payment_intent;
                }
            }
            OrderEvent::PaymentFailed {
                provider_event_id, ..
            }
            | OrderEvent::OrderRefunded {
                provider_event_id, ..
            } => {
                self.seen.insert(provider_event_id);
            }
            OrderEvent::RefundRequested { reason, .. } => self.refund_reason = Some(reason),
            OrderEvent::HoldReplaced { from, to, .. } => self.replaced.push((from, to)),
            OrderEvent::PaymentRequested {
                payment_intent,
                payment_url,
                ..
            } => {
                self.payment_intent.get_or_insert(payment_intent);
                self.payment_url = payment_url;
            }
            OrderEvent::OrderConfirmed { .. }
            | OrderEvent::OrderExpired { .. }
            | OrderEvent::OrderCancelled { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::ids::{CustomerId, EventId};
    use crate::layout::LayoutSpec;

    type OrderTest = TestFramework<Order>;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }
    fn alice() -> CustomerId {
        CustomerId::parse("alice").unwrap()
    }
    fn placed() -> OrderPlaced {
        OrderPlaced {
            order_id: OrderId(Uuid::from_u128(1)),
            event_id: EventId(Uuid::from_u128(2)),
            customer_id: alice(),
            holds: vec![HoldId(Uuid::from_u128(3))],
            seats: vec![SeatId(0), SeatId(1)],
            amount_cents: 9_000,
            currency: "EUR".into(),
            payment_due: t(900),
            at: t(0),
        }
    }
    fn order_placed() -> OrderEvent {
        OrderEvent::OrderPlaced(placed())
    }
    fn succeeded(id: &str, at: i64) -> OrderEvent {
        OrderEvent::PaymentSucceeded {
            provider_event_id: id.into(),
            payment_intent: Some("pi_1".into()),
            at: t(at),
        }
    }
    fn record_success(id: &str, now: i64) -> OrderCommand {
        OrderCommand::RecordPaymentSucceeded {
            provider_event_id: id.into(),
            payment_intent: Some("pi_1".into()),
            now: t(now),
        }
    }
    fn record_failure(id: &str, now: i64) -> OrderCommand {
        OrderCommand::RecordPaymentFailed {
            provider_event_id: id.into(),
            reason: "card_declined".into(),
            now: t(now),
        }
    }

    #[test]
    fn when_seats_are_priced_then_the_sum_is_checked() {
        let layout = VenueLayout::new(LayoutSpec::grid(1, 3, 4_500).unwrap()).unwrap();
        assert_eq!(price(&layout, &[SeatId(0), SeatId(2)]), Ok(9_000));
        assert_eq!(
            price(&layout, &[SeatId(7)]),
            Err(OrderError::UnknownSeat(SeatId(7)))
        );
        assert_eq!(total([u64::MAX, 1]), Err(OrderError::AmountOverflow));
    }

    #[test]
    fn given_nothing_when_placed_then_pending_and_placing_again_is_a_no_op() {
        OrderTest::with(())
            .given_no_previous_events()
            .when(OrderCommand::Place(placed()))
            .then_expect_events(vec![order_placed()]);
        OrderTest::with(())
            .given(vec![order_placed()])
            .when(OrderCommand::Place(placed()))
            .then_expect_events(vec![]);
        let other = OrderPlaced {
            amount_cents: 1,
            ..placed()
        };
        OrderTest::with(())
            .given(vec![order_placed()])
            .when(OrderCommand::Place(other))
            .then_expect_error(OrderError::OrderIdReused(placed().order_id));
        let empty = OrderPlaced {
            seats: vec![],
            ..placed()
        };
        OrderTest::with(())
            .given_no_previous_events()
            .when(OrderCommand::Place(empty))
            .then_expect_error(OrderError::Empty);
    }

    #[test]
    fn given_pending_when_paid_then_paid_once_whatever_the_provider_sends_again() {
        OrderTest::with(())
            .given(vec![order_placed()])
            .when(record_success("evt_1", 10))
            .then_expect_events(vec![succeeded("evt_1", 10)]);
        OrderTest::with(())
            .given(vec![order_placed(), succeeded("evt_1", 10)])
            .when(record_success("evt_1", 11))
            .then_expect_events(vec![]);
        // A failure delivered after the success changes nothing.
        OrderTest::with(())
            .given(vec![order_placed(), succeeded("evt_1", 10)])
            .when(record_failure("evt_0", 12))
            .then_expect_events(vec![]);
    }

    #[test]
    fn given_a_failure_or_an_expiry_when_the_money_arrives_late_then_paid() {
        let failed = OrderEvent::PaymentFailed {
            provider_event_id: "evt_f".into(),
            reason: "card_declined".into(),
            at: t(10),
        };
        OrderTest::with(())
            .given(vec![order_placed()])
            .when(record_failure("evt_f", 10))
            .then_expect_events(vec![failed.clone()]);
        let mut order = Order::default();
        for e in [order_placed(), failed, succeeded("evt_s", 20)] {
            order.apply(e);
        }
        assert_eq!(order.status(), Some(OrderStatus::Paid));
        let mut order = Order::default();
        for e in [
            order_placed(),
            OrderEvent::OrderExpired { at: t(900) },
            succeeded("evt_s", 950),
        ] {
            order.apply(e);
        }
        assert_eq!(order.status(), Some(OrderStatus::Paid));
    }

    #[test]
    fn given_pending_when_the_payment_window_passes_then_expired_not_before() {
        OrderTest::with(())
            .given(vec![order_placed()])
            .when(OrderCommand::Expire { now: t(899) })
            .then_expect_events(vec![]);
        OrderTest::with(())
            .given(vec![order_placed()])
            .when(OrderCommand::Expire { now: t(900) })
            .then_expect_events(vec![OrderEvent::OrderExpired { at: t(900) }]);
        OrderTest::with(())
            .given(vec![order_placed(), succeeded("evt_1", 10)])
            .when(OrderCommand::Expire { now: t(1_000) })
            .then_expect_events(vec![]);
    }

    #[test]
    fn given_a_pending_order_then_it_reads_expired_from_its_payment_due() {
        let mut order = Order::default();
        order.apply(order_placed());
        assert_eq!(order.status_at(t(899)), Some(OrderStatus::PendingPayment));
        assert_eq!(order.status_at(t(900)), Some(OrderStatus::Expired));
        order.apply(succeeded("evt_1", 950));
        assert_eq!(order.status_at(t(2_000)), Some(OrderStatus::Paid));
    }

    #[test]
    fn given_a_cancelled_order_when_the_money_arrives_then_it_is_refunded() {
        OrderTest::with(())
            .given(vec![
                order_placed(),
                OrderEvent::OrderCancelled { at: t(5) },
            ])
            .when(record_success("evt_1", 10))
            .then_expect_events(vec![
                succeeded("evt_1", 10),
                OrderEvent::RefundRequested {
                    reason: RefundReason::CancelledBeforePayment,
                    payment_intent: Some("pi_1".into()),
                    at: t(10),
                },
            ]);
    }

    #[test]
    fn given_paid_when_seats_are_booked_then_confirmed_or_when_lost_then_refunded() {
        let paid = vec![order_placed(), succeeded("evt_1", 10)];
        OrderTest::with(())
            .given(paid.clone())
            .when(OrderCommand::Confirm { now: t(11) })
            .then_expect_events(vec![OrderEvent::OrderConfirmed { at: t(11) }]);
        OrderTest::with(())
            .given(paid.clone())
            .when(OrderCommand::RefundSeatsLost { now: t(11) })
            .then_expect_events(vec![OrderEvent::RefundRequested {
                reason: RefundReason::SeatsLost,
                payment_intent: Some("pi_1".into()),
                at: t(11),
            }]);
        let mut refunding = paid;
        refunding.push(OrderEvent::RefundRequested {
            reason: RefundReason::SeatsLost,
            payment_intent: Some("pi_1".into()),
            at: t(11),
        });
        OrderTest::with(())
            .given(refunding)
            .when(OrderCommand::RecordRefunded {
                provider_event_id: "re_1".into(),
                now: t(12),
            })
            .then_expect_events(vec![OrderEvent::OrderRefunded {
                provider_event_id: "re_1".into(),
                at: t(12),
            }]);
        OrderTest::with(())
            .given(vec![order_placed()])
            .when(OrderCommand::Confirm { now: t(11) })
            .then_expect_error(OrderError::WrongStatus(
                placed().order_id,
                OrderStatus::PendingPayment,
                "be confirmed",
            ));
    }

    #[test]
    fn only_its_customer_cancels_before_payment_or_after_confirmation() {
        let cancel = |who: &str| OrderCommand::Cancel {
            customer_id: CustomerId::parse(who).unwrap(),
            now: t(20),
        };
        OrderTest::with(())
            .given(vec![order_placed()])
            .when(cancel("mallory"))
            .then_expect_error(OrderError::NotOrderOwner(placed().order_id));
        OrderTest::with(())
            .given(vec![order_placed()])
            .when(cancel("alice"))
            .then_expect_events(vec![OrderEvent::OrderCancelled { at: t(20) }]);
        let confirmed = vec![
            order_placed(),
            succeeded("evt_1", 10),
            OrderEvent::OrderConfirmed { at: t(11) },
        ];
        OrderTest::with(())
            .given(confirmed)
            .when(cancel("alice"))
            .then_expect_events(vec![OrderEvent::RefundRequested {
                reason: RefundReason::CustomerCancelled,
                payment_intent: Some("pi_1".into()),
                at: t(20),
            }]);
        OrderTest::with(())
            .given(vec![order_placed(), succeeded("evt_1", 10)])
            .when(cancel("alice"))
            .then_expect_error(OrderError::WrongStatus(
                placed().order_id,
                OrderStatus::Paid,
                "be cancelled while its seats are booked",
            ));
    }

    #[test]
    fn given_paid_when_an_expired_hold_is_replaced_then_the_order_holds_the_new_one() {
        let (old, new) = (placed().holds[0], HoldId(Uuid::from_u128(4)));
        let paid = vec![order_placed(), succeeded("evt_1", 10)];
        let replace = || OrderCommand::ReplaceHold {
            from: old,
            to: new,
            now: t(11),
        };
        let replaced = OrderEvent::HoldReplaced {
            from: old,
            to: new,
            at: t(11),
        };
        OrderTest::with(())
            .given(paid.clone())
            .when(replace())
            .then_expect_events(vec![replaced.clone()]);
        let mut again = paid.clone();
        again.push(replaced.clone());
        OrderTest::with(())
            .given(again.clone())
            .when(replace())
            .then_expect_events(vec![]);
        let mut order = Order::default();
        for e in again {
            order.apply(e);
        }
        assert_eq!(order.holds(), vec![new]);
        assert_eq!(order.status(), Some(OrderStatus::Paid));
        assert_eq!(order.payment_intent(), Some("pi_1"));
        OrderTest::with(())
            .given(vec![order_placed()])
            .when(replace())
            .then_expect_error(OrderError::WrongStatus(
                placed().order_id,
                OrderStatus::PendingPayment,
                "take a replacement hold",
            ));
    }

    #[test]
    fn every_status_reads_and_writes_the_name_serde_gives_it() {
        use OrderStatus::*;
        for status in [
            PendingPayment,
            Paid,
            Confirmed,
            PaymentFailed,
            Expired,
            Cancelled,
            RefundPending,
            Refunded,
        ] {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
        }
        for reason in [
            RefundReason::SeatsLost,
            RefundReason::CancelledBeforePayment,
            RefundReason::CustomerCancelled,
        ] {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
    }

    #[test]
    fn given_pending_when_the_provider_takes_the_request_then_its_payment_is_known_once() {
        let requested = OrderEvent::PaymentRequested {
            payment_intent: "pi_1".into(),
            payment_url: Some("https://pay.example/pi_1".into()),
            at: t(1),
        };
        let request = || OrderCommand::RecordPaymentRequested {
            payment_intent: "pi_1".into(),
            payment_url: Some("https://pay.example/pi_1".into()),
            now: t(1),
        };
        OrderTest::with(())
            .given(vec![order_placed()])
            .when(request())
            .then_expect_events(vec![requested.clone()]);
        OrderTest::with(())
            .given(vec![order_placed(), requested.clone()])
            .when(request())
            .then_expect_events(vec![]);
        let mut order = Order::default();
        for e in [order_placed(), requested] {
            order.apply(e);
        }
        assert_eq!(order.status(), Some(OrderStatus::PendingPayment));
        assert_eq!(order.payment_intent(), Some("pi_1"));
        assert_eq!(order.payment_url(), Some("https://pay.example/pi_1"));
    }
}
