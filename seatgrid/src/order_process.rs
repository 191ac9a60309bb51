//! The order process: follows the event log and settles each order whose payment outcome (or
//! expiry, cancellation or refund) was recorded, through the core (`BookingService::settle_order`).
//!
//! Policy: at least once, with its own durable checkpoint (`order_process`, the projector
//! runner's); every step it triggers is idempotent in the core, so a redelivery after a crash
//! changes nothing. An unavailable store retries the batch; a refusal is logged and passed over.

use std::sync::Arc;

use async_trait::async_trait;
use booking::{BookingService, CommandError};
use domain::stored::aggregate_type::ORDER;
use domain::stored::event_type::{
    ORDER_CANCELLED, ORDER_EXPIRED, ORDER_REFUNDED, PAYMENT_FAILED, PAYMENT_SUCCEEDED,
};
use domain::OrderId;
use projections::{Projection, ProjectionError, RecordedEvent};
use sqlx::PgConnection;

/// The process's checkpoint name.
pub const ORDER_PROCESS: &str = "order_process";

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
        for e in events {
            if e.aggregate_type != ORDER || !settles.contains(&e.event_type.as_str()) {
                continue;
            }
            let Ok(order_id) = e.aggregate_id.parse::<OrderId>() else {
                continue;
            };
            match self.core.settle_order(order_id).await {
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
