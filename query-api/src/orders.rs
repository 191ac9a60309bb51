//! Orders in GraphQL: the `Order` type, and the live `order(id)` subscription's stream.
//!
//! Policy: an order is always answered by the core (never behind: an order's status decides what
//! a buyer does next). The subscription pushes the order at once, then each status it passes
//! through, in order, as the projector publishes them on the order's channel (a batch that made
//! several changes names each), with the core's details of the order at that moment; the arrival
//! of the provider's payment page (`paymentUrl`) is pushed too. A gap in the live updates, or
//! `paymentDue` passing (an unpaid order reads expired then, without waiting for the sweeper),
//! makes it ask the core. An order with the same status and payment page as the last one pushed
//! is not pushed again. It ends when the order is `CONFIRMED` or `REFUNDED` (nothing changes after those).

use std::sync::Arc;

use async_graphql::{Enum, Result, SimpleObject};
use booking::orders::OrderView;
use booking::{BookingCommands, Caller};
use chrono::{DateTime, Utc};
use domain::OrderId;
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use projections::OrderRecord;

use async_graphql::connection::{Connection, Edge};

use crate::errors::{coded, read_failed};
use crate::live::LiveMessage;
use crate::seats::Seat;

// An order's status: the domain names it (`domain::order`); GraphQL only spells it.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "domain::OrderStatus")]
pub enum OrderStatus {
    /// Placed; the holds are kept until `paymentDue`.
    PendingPayment,
    /// The money arrived; the seats are being booked.
    Paid,
    /// Every seat is booked for the buyer.
    Confirmed,
    PaymentFailed,
    /// Nothing was paid by `paymentDue`.
    Expired,
    /// Cancelled by the buyer before paying.
    Cancelled,
    /// Money is being given back (see `refundReason`).
    RefundPending,
    Refunded,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "domain::RefundReason")]
pub enum RefundReason {
    /// Paid after the holds expired and their seats went to someone else.
    SeatsLost,
    /// Paid after the buyer had cancelled.
    CancelledBeforePayment,
    /// The buyer cancelled a confirmed order.
    CustomerCancelled,
}

/// A buyer's order: their holds' seats, its amount and where its payment stands.
#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct Order {
    pub id: Uuid,
    pub event_id: Uuid,
    pub customer_id: String,
    pub status: OrderStatus,
    /// The order's holds (a hold placed again for a late payer replaces the one that lapsed).
    pub hold_ids: Vec<Uuid>,
    pub seats: Vec<Seat>,
    pub amount_cents: u64,
    pub currency: String,
    pub payment_due: DateTime<Utc>,
    /// The payment provider's idempotency key for this order (the order id).
    pub payment_key: String,
    /// The provider's payment id, once the provider took the request.
    pub payment_intent: Option<String>,
    /// Where the buyer pays (the provider's page), once the provider took the request.
    pub payment_url: Option<String>,
    pub refund_reason: Option<RefundReason>,
}

impl Order {
    pub fn from_view(v: &OrderView) -> Self {
        Self {
            id: v.order_id,
            event_id: v.event_id,
            customer_id: v.customer_id.clone(),
            status: v.status.into(),
            hold_ids: v.holds.clone(),
            seats: v.seats.iter().cloned().map(Seat::from).collect(),
            amount_cents: v.amount_cents,
            currency: v.currency.clone(),
            payment_due: v.payment_due,
            payment_key: v.payment_key.clone(),
            payment_intent: v.payment_intent.clone(),
            payment_url: v.payment_url.clone(),
            refund_reason: v.refund_reason.map(Into::into),
        }
    }

    /// From the orders read model (as projected; lazy expiry applied as of `now`).
    pub fn from_record(r: &OrderRecord, event: &domain::KnownEvent, now: DateTime<Utc>) -> Self {
        let seats: Vec<domain::SeatId> =
            r.seats.iter().map(|s| domain::SeatId(*s as u32)).collect();
        Self {
            id: r.order_id,
            event_id: r.event_id,
            customer_id: r.customer_id.clone(),
            status: r
                .status_at(now)
                .unwrap_or(domain::OrderStatus::PendingPayment)
                .into(),
            hold_ids: r.holds.clone(),
            seats: seats
                .iter()
                .filter_map(|s| event.layout.label(*s))
                .map(|l| Seat::from(booking::views::SeatView::from(l)))
                .collect(),
            amount_cents: r.amount_cents.max(0) as u64,
            currency: r.currency.clone(),
            payment_due: r.payment_due,
            payment_key: r.order_id.to_string(),
            payment_intent: r.payment_intent.clone(),
            payment_url: None,
            refund_reason: r
                .refund_reason
                .as_deref()
                .and_then(domain::RefundReason::parse)
                .map(Into::into),
        }
    }

    fn is_final(&self) -> bool {
        matches!(self.status, OrderStatus::Confirmed | OrderStatus::Refunded)
    }
}

/// An event's orders for its managers (`Event.orders`), a page at a time.
pub(crate) async fn event_orders(
    ctx: &async_graphql::Context<'_>,
    event: &domain::KnownEvent,
    first: i32,
    after: Option<String>,
) -> Result<Connection<String, Order>> {
    crate::auth::manager(ctx, &event.definition)?;
    if !(0..=100).contains(&first) {
        return Err(coded(
            "invalid_page_size",
            "first must be between 0 and 100",
        ));
    }
    let after = match after {
        None => None,
        Some(c) => Some(
            c.parse::<Uuid>()
                .map_err(|_| coded("invalid_cursor", "after is not a cursor from this API"))?,
        ),
    };
    let (page, more) = ctx
        .data_unchecked::<projections::ReadModels>()
        .event_orders(event.definition.event_id.0, after, i64::from(first))
        .await
        .map_err(|e| read_failed(Arc::new(e)))?;
    let now = Utc::now();
    let mut connection = Connection::new(after.is_some(), more);
    connection.edges.extend(
        page.iter()
            .map(|r| Edge::new(r.order_id.to_string(), Order::from_record(r, event, now))),
    );
    Ok(connection)
}

/// The `order(id)` subscription's stream (see the module policy); `first` is the core's answer.
pub(crate) fn order_stream(
    core: Arc<dyn BookingCommands>,
    caller: Caller,
    rx: tokio::sync::broadcast::Receiver<Arc<LiveMessage>>,
    channel: String,
    first: Order,
) -> impl Stream<Item = Result<Order>> {
    struct Feed {
        core: Arc<dyn BookingCommands>,
        caller: Caller,
        rx: tokio::sync::broadcast::Receiver<Arc<LiveMessage>>,
        channel: String,
        /// Orders to push, oldest first; one equal in status to the last pushed is skipped.
        queue: std::collections::VecDeque<Order>,
        last: Option<Order>,
        /// The newest projected version seen (older copies are late and skipped).
        version: i64,
    }
    impl Feed {
        async fn ask(&self, id: Uuid) -> Option<Order> {
            match self.core.order(OrderId(id), &self.caller).await {
                Ok(v) => Some(Order::from_view(&v)),
                Err(e) => {
                    tracing::debug!(error = %e, "order subscription could not read the order now");
                    None
                }
            }
        }

        /// Queues each status a projected batch passed through, with the core's details now.
        async fn follow(&mut self, record: OrderRecord, id: Uuid) {
            if record.version <= self.version {
                return;
            }
            self.version = record.version;
            let Some(now) = self.ask(id).await else {
                return;
            };
            let passed: Vec<domain::OrderStatus> = record
                .passed
                .iter()
                .filter_map(|s| domain::OrderStatus::parse(s))
                .collect();
            if passed.is_empty() {
                // A change without a new status (the provider's payment page arrived): pushed with
                // the status of this batch, even when the order has moved on since (its next
                // batch pushes that).
                if let Some(status) = domain::OrderStatus::parse(&record.status) {
                    self.queue.push_back(Order {
                        status: status.into(),
                        ..now
                    });
                }
                return;
            }
            for status in passed {
                self.queue.push_back(Order {
                    status: status.into(),
                    ..now.clone()
                });
            }
        }
    }
    let feed = Feed {
        core,
        caller,
        rx,
        channel,
        queue: [first].into(),
        last: None,
        version: 0,
    };
    futures::stream::unfold(feed, |mut f| async move {
        loop {
            while let Some(order) = f.queue.pop_front() {
                let news = f
                    .last
                    .as_ref()
                    .is_none_or(|l| l.status != order.status || l.payment_url != order.payment_url);
                if news {
                    f.last = Some(order.clone());
                    return Some((Ok(order), f));
                }
            }
            let last = f.last.clone()?;
            if last.is_final() {
                return None;
            }
            let id = last.id;
            let due = match last.status {
                OrderStatus::PendingPayment => {
                    (last.payment_due - Utc::now()).to_std().unwrap_or_default()
                        + std::time::Duration::from_millis(20)
                }
                _ => std::time::Duration::from_secs(3600),
            };
            tokio::select! {
                got = f.rx.recv() => match got {
                    Ok(msg) if msg.channel == f.channel => {
                        if let Ok(record) = serde_json::from_str::<OrderRecord>(&msg.payload) {
                            f.follow(record, id).await;
                        }
                    }
                    // Updates were missed: the core says where the order stands.
                    Ok(msg) if msg.is_resync() => f.queue.extend(f.ask(id).await),
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => f.queue.extend(f.ask(id).await),
                    Err(RecvError::Closed) => return None,
                },
                // Unpaid at its due time: the core reads it expired.
                _ = tokio::time::sleep(due) => f.queue.extend(f.ask(id).await),
            }
        }
    })
}
