//! The order process: follows the event log and settles each order whose payment outcome (or
//! expiry, cancellation or refund) was recorded, through the core (`BookingService::settle_order`).
//!
//! Policy: at least once, with its own durable checkpoint (`order_process`, the projector
//! runner's); every step it triggers is idempotent in the core, so a redelivery after a crash
//! changes nothing. A batch settles each order it names once, up to [`SETTLES_AT_ONCE`] at a
//! time (orders share nothing but seats, which the seat blocks arbitrate). An unavailable store
//! retries the batch; a refusal is logged and passed over. It settles through a small pool of its
//! own (see `system`), so request traffic cannot keep paid orders waiting.

use std::sync::Arc;

use async_trait::async_trait;
use booking::{BookingService, CommandError};
use domain::stored::aggregate_type::ORDER;
use domain::stored::event_type::{
    ORDER_CANCELLED, ORDER_EXPIRED, ORDER_REFUNDED, PAYMENT_FAILED, PAYMENT_SUCCEEDED,
};
use domain::OrderId;
use futures::StreamExt;
use projections::{Projection, ProjectionError, RecordedEvent};
use sqlx::PgConnection;

/// The process's checkpoint name.
pub const ORDER_PROCESS: &str = "order_process";

/// How many orders of one batch are settled at once (orders are independent of each other).
pub const SETTLES_AT_ONCE: usize = 4;

pub struct OrderProcess {
    core: Arc<BookingService>,
}

impl OrderProcess {
    pub fn new(core: Arc<BookingService>) -> Self {
        Self { core }
    }
}

#[async_trait]
impl Projection for OrderProcess {
    type AfterCommit = ();

    fn name(&self) -> &'static str {
        ORDER_PROCESS
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[domain::stored::aggregate_type::ORDER])
    }

    async fn apply(
        &self,
        _tx: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let settles = [
            PAYMENT_SUCCEEDED,
            PAYMENT_FAILED,
            ORDER_EXPIRED,
            ORDER_CANCELLED,
            ORDER_REFUNDED,
        ];
        // Each order once per batch (a settle reads the order's latest status), several at once.
        let mut orders: Vec<OrderId> = Vec::new();
        for e in events {
            if e.aggregate_type != ORDER || !settles.contains(&e.event_type.as_str()) {
                continue;
            }
            if let Ok(order_id) = e.aggregate_id.parse::<OrderId>() {
                if !orders.contains(&order_id) {
                    orders.push(order_id);
                }
            }
        }
        let results: Vec<(OrderId, Result<(), CommandError>)> = futures::stream::iter(orders)
            .map(|order_id| async move { (order_id, self.core.settle_order(order_id).await) })
            .buffer_unordered(SETTLES_AT_ONCE)
            .collect()
            .await;
        for (order_id, result) in results {
            match result {
                Ok(()) => {}
                Err(err @ (CommandError::Unavailable(_) | CommandError::Contention)) => {
                    return Err(ProjectionError::External(format!(
                        "order {order_id} not settled yet: {err}"
                    )));
                }
                Err(err) => tracing::error!(%order_id, error = %err, "order not settled"),
            }
        }
        Ok(())
    }

    async fn after_commit(&self, _: ()) {}

    async fn reset(&self, _tx: &mut PgConnection) -> Result<(), ProjectionError> {
        // Nothing is kept: a replay settles again, which changes nothing.
        Ok(())
    }
}
