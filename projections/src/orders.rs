//! The orders read model (`rm_orders`): one row per order, following the order's lifecycle as the
//! domain spells it ([`domain::OrderEvent::next_status`]).
//!
//! Policy: rows are written once per order per batch, with a fresh version from the read models'
//! sequence, and published on the order's channel after commit (see [`crate::cache`]). A row's
//! status is as recorded; [`OrderRecord::status_at`] applies the lazy expiry at `payment_due`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::{OrderEvent, OrderStatus};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::lookup::by_keys;
use crate::runner::ProjectionError;

/// An order as the read models keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct OrderRecord {
    pub order_id: Uuid,
    pub event_id: Uuid,
    pub customer_id: String,
    /// As recorded (`pending_payment`, ...); see [`OrderRecord::status_at`].
    pub status: String,
    pub holds: Vec<Uuid>,
    pub seats: Vec<i32>,
    pub seat_count: i32,
    pub amount_cents: i64,
    pub currency: String,
    pub payment_due: DateTime<Utc>,
    pub refund_reason: Option<String>,
    pub payment_intent: Option<String>,
    pub placed_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// Every status the order passed through in the batch that wrote this row, in order (the
    /// published copy carries it, so a subscriber sees each change even when one batch made
    /// several; not stored).
    #[sqlx(skip)]
    #[serde(default)]
    pub passed: Vec<String>,
}

pub const ORDER_COLUMNS: &str = "order_id, event_id, customer_id, status, holds, seats, \
    seat_count, amount_cents, currency, payment_due, refund_reason, payment_intent, placed_at, \
    paid_at, updated_at, version";

impl OrderRecord {
    /// The status as of `now`: still unpaid at `payment_due` reads `expired`.
    pub fn status_at(&self, now: DateTime<Utc>) -> Option<OrderStatus> {
        Some(OrderStatus::parse(&self.status)?.at(self.payment_due, now))
    }

    fn follow(&mut self, event: &OrderEvent) {
        let status = OrderStatus::parse(&self.status);
        if let Some(next) = event.next_status(status) {
            if Some(next) != status {
                self.passed.push(next.as_str().to_owned());
            }
            self.status = next.as_str().to_owned();
        }
        self.updated_at = event.at();
        match event {
            OrderEvent::PaymentSucceeded {
                at, payment_intent, ..
            } if self.paid_at.is_none() => {
                self.paid_at = Some(*at);
                self.payment_intent = payment_intent.clone();
            }
            OrderEvent::PaymentRequested { payment_intent, .. } => {
                self.payment_intent
                    .get_or_insert_with(|| payment_intent.clone());
            }
            OrderEvent::RefundRequested { reason, .. } => {
                self.refund_reason = Some(reason.as_str().to_owned())
            }
            OrderEvent::HoldReplaced { from, to, .. } => {
                for h in &mut self.holds {
                    if *h == from.0 {
                        *h = to.0;
                    }
                }
            }
            _ => {}
        }
    }
}

/// Applies the order events of a batch (`(order id, event)` in order) and returns the rows written.
pub(crate) async fn apply_orders(
    tx: &mut PgConnection,
    events: &[(Uuid, &OrderEvent)],
) -> Result<Vec<OrderRecord>, ProjectionError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<Uuid> = events.iter().map(|(id, _)| *id).collect();
    ids.sort();
    ids.dedup();
    let rows: Vec<OrderRecord> =
        sqlx::query_as(&by_keys(ORDER_COLUMNS, "rm_orders", "order_id", true))
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;
    let mut orders: HashMap<Uuid, OrderRecord> =
        rows.into_iter().map(|o| (o.order_id, o)).collect();
    for (order_id, event) in events {
        if let OrderEvent::OrderPlaced(p) = event {
            orders.entry(*order_id).or_insert_with(|| OrderRecord {
                order_id: *order_id,
                event_id: p.event_id.0,
                customer_id: p.customer_id.to_string(),
                status: OrderStatus::PendingPayment.as_str().to_owned(),
                holds: p.holds.iter().map(|h| h.0).collect(),
                seats: p.seats.iter().map(|s| s.0 as i32).collect(),
                seat_count: p.seats.len() as i32,
                amount_cents: p.amount_cents as i64,
                currency: p.currency.clone(),
                payment_due: p.payment_due,
                refund_reason: None,
                payment_intent: None,
                placed_at: p.at,
                paid_at: None,
                updated_at: p.at,
                version: 0,
                passed: vec![OrderStatus::PendingPayment.as_str().to_owned()],
            });
            continue;
        }
        match orders.get_mut(order_id) {
            Some(order) => order.follow(event),
            None => tracing::warn!(%order_id, "an order event before its placement; skipped"),
        }
    }
    let dirty: Vec<&OrderRecord> = ids.iter().filter_map(|id| orders.get(id)).collect();
    // Serialized straight into the statement's parameter (no `serde_json::Value` in between).
    let json = sqlx::types::Json(&dirty);
    let mut written: Vec<OrderRecord> = sqlx::query_as(&format!(
        "INSERT INTO rm_orders ({ORDER_COLUMNS})
         SELECT order_id, event_id, customer_id, status, holds, seats, seat_count, amount_cents,
                currency, payment_due, refund_reason, payment_intent, placed_at, paid_at,
                updated_at, nextval('read_model_version')
           FROM jsonb_populate_recordset(NULL::rm_orders, $1)
         ON CONFLICT (order_id, event_id) DO UPDATE
            SET status = EXCLUDED.status, holds = EXCLUDED.holds,
                refund_reason = EXCLUDED.refund_reason, paid_at = EXCLUDED.paid_at,
                payment_intent = EXCLUDED.payment_intent,
                updated_at = EXCLUDED.updated_at, version = EXCLUDED.version
         RETURNING {ORDER_COLUMNS}"
    ))
    .bind(json)
    .fetch_all(&mut *tx)
    .await?;
    for row in &mut written {
        if let Some(o) = orders.get_mut(&row.order_id) {
            row.passed = std::mem::take(&mut o.passed);
        }
    }
    Ok(written)
}

/// Counts the orders' status changes of a committed batch, and how long paying and confirming took
/// (labels are status names only: the series stay few whatever the sales).
pub(crate) fn count(orders: &[OrderRecord]) {
    for order in orders {
        for to in &order.passed {
            metrics::counter!("seatgrid_order_transitions_total", "to" => to.clone()).increment(1);
            let since_placed =
                |at: DateTime<Utc>| (at - order.placed_at).to_std().unwrap_or_default();
            match to.as_str() {
                "paid" => {
                    if let Some(paid) = order.paid_at {
                        metrics::histogram!("seatgrid_order_time_to_pay_seconds")
                            .record(since_placed(paid).as_secs_f64());
                    }
                }
                "confirmed" => metrics::histogram!("seatgrid_order_time_to_confirm_seconds")
                    .record(since_placed(order.updated_at).as_secs_f64()),
                _ => {}
            }
        }
    }
}
