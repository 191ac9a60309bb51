//! The payment-request relay: every placed order's payment is asked of the provider, exactly once
//! in effect, whatever crashes in between.
//!
//! Policy:
//! - The `OrderPlaced` event is the outbox row: it is written in the same transaction as the order
//!   itself, so a placed order always has its request waiting. The relay follows the event log
//!   with its own durable checkpoint (`payment_requests`, the projector runner's), and calls the
//!   provider *inside* the batch: the checkpoint only moves past an order once the provider
//!   accepted its request. A crash before that re-sends it.
//! - Re-sending is harmless: the order id is the provider's idempotency key, so the provider
//!   answers the same payment and never charges twice.
//! - A provider that is down or answers 5xx stops the relay (the batch is retried with backoff); a
//!   request the provider refuses as invalid (4xx) is logged and passed over, so one bad order
//!   cannot hold up every later one (its order expires unpaid).

use std::time::Duration;

use async_trait::async_trait;
use domain::StoredEvent;
use projections::{Projection, ProjectionError, RecordedEvent};
use serde_json::json;
use sqlx::PgConnection;

/// The relay's checkpoint name.
pub const PAYMENT_REQUESTS: &str = "payment_requests";

pub struct PaymentRelay {
    provider_url: String,
    client: reqwest::Client,
}

impl PaymentRelay {
    /// Asks the provider at `provider_url` (its `/v1/payment_intents`, Stripe-shaped).
    pub fn new(provider_url: impl Into<String>) -> Self {
        Self {
            provider_url: provider_url.into().trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
        }
    }
}

#[async_trait]
impl Projection for PaymentRelay {
    type AfterCommit = ();

    fn name(&self) -> &'static str {
        PAYMENT_REQUESTS
    }

    async fn apply(
        &self,
        _tx: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        for e in events {
            let Ok(Some(stored)) = StoredEvent::decode(&e.aggregate_type, &e.payload) else {
                continue;
            };
            let Some(placed) = stored.order_placed() else {
                continue;
            };
            let order_id = placed.order_id.to_string();
            let sent = self
                .client
                .post(format!("{}/v1/payment_intents", self.provider_url))
                .header("idempotency-key", &order_id)
                .json(&json!({
                    "order_id": placed.order_id.0,
                    "amount_cents": placed.amount_cents,
                    "currency": placed.currency,
                }))
                .send()
                .await
                .map_err(|e| ProjectionError::External(format!("payment provider: {e}")))?;
            let status = sent.status();
            if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                return Err(ProjectionError::External(format!(
                    "payment provider answered {status} for order {order_id}"
                )));
            }
            if !status.is_success() {
                let body = sent.text().await.unwrap_or_default();
                tracing::error!(%order_id, %status, %body, "payment provider refused the request; the order will expire unpaid");
                continue;
            }
            metrics::counter!("seatgrid_payment_requests_total").increment(1);
            tracing::info!(%order_id, "payment requested");
        }
        Ok(())
    }

    async fn after_commit(&self, _: ()) {}

    async fn reset(&self, _tx: &mut PgConnection) -> Result<(), ProjectionError> {
        // Nothing is kept: a replay asks again, which the provider answers idempotently.
        Ok(())
    }
}
