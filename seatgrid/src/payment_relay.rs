//! The payment relay: every placed order's payment, and every refund an order asks for, is asked
//! of the provider, exactly once in effect, whatever crashes in between.
//!
//! Policy:
//! - The events are the outbox rows: `OrderPlaced` (a payment to ask for) and `RefundRequested`
//!   (money to give back) are written in the same transaction as the order's change itself, so
//!   an order always has its request waiting. The relay follows the event log with its own
//!   durable checkpoint (`payment_requests`, the projector runner's), and calls the provider
//!   *inside* the batch: the checkpoint only moves past a request once the provider accepted it.
//!   A crash before that sends it again.
//! - Once the provider took a payment request, the order records the provider's payment id and
//!   the page where the buyer pays (`PaymentRequested`, through the core; a copy is a no-op).
//! - Sending again is harmless: the order id is the payment's idempotency key and
//!   `refund-<order id>` the refund's, so the provider answers the same payment or refund and
//!   never charges or refunds twice.
//! - A provider that is down or overloaded stops the relay (the batch is retried with backoff); a
//!   request the provider refuses for good is logged and passed over, so one bad order cannot
//!   hold up every later one (its order expires unpaid, or its refund waits for an operator).

use std::sync::Arc;

use async_trait::async_trait;
use booking::payments::{PaymentProvider, PaymentRequest, ProviderError, RefundRequest};
use booking::{BookingService, CommandError};
use domain::{OrderEvent, StoredEvent};
use projections::{Projection, ProjectionError, RecordedEvent};
use sqlx::PgConnection;

/// The relay's checkpoint name.
pub const PAYMENT_REQUESTS: &str = "payment_requests";

pub struct PaymentRelay {
    provider: Arc<dyn PaymentProvider>,
    core: Arc<BookingService>,
}

impl PaymentRelay {
    /// Asks `provider`, and records on each order (through `core`) where its buyer pays.
    pub fn new(provider: Arc<dyn PaymentProvider>, core: Arc<BookingService>) -> Self {
        Self { provider, core }
    }

    /// Sends one request; `Err` only when the batch must be retried.
    async fn send(&self, event: &RecordedEvent, order: &OrderEvent) -> Result<(), ProjectionError> {
        let order_id = &event.aggregate_id;
        let (what, sent) = match order {
            OrderEvent::OrderPlaced(placed) => {
                let request = PaymentRequest {
                    order_id: placed.order_id.0,
                    amount_cents: placed.amount_cents,
                    currency: placed.currency.clone(),
                };
                let started = match self.provider.request_payment(&request).await {
                    Ok(started) => started,
                    Err(e) => return self.refused_or_retry("payment", order_id, e),
                };
                // The order learns its payment id and page; a store that is down retries the
                // batch, and asking the provider again is harmless (same key, same payment).
                match self
                    .core
                    .record_payment_request(placed.order_id, &started)
                    .await
                {
                    Ok(()) => {}
                    Err(e @ (CommandError::Unavailable(_) | CommandError::Contention)) => {
                        return Err(ProjectionError::External(format!(
                            "payment request of order {order_id} not recorded: {e}"
                        )))
                    }
                    Err(e) => {
                        tracing::error!(%order_id, error = %e, "payment request not recorded")
                    }
                }
                ("payment", Ok(()))
            }
            OrderEvent::RefundRequested { payment_intent, .. } => {
                let (Some(intent), Ok(id)) = (payment_intent, order_id.parse()) else {
                    tracing::error!(%order_id, "a refund without the payment to refund; an operator must refund it");
                    return Ok(());
                };
                let request = RefundRequest {
                    order_id: id,
                    payment_intent: intent.clone(),
                };
                ("refund", self.provider.request_refund(&request).await)
            }
            _ => return Ok(()),
        };
        match sent {
            Ok(()) => {
                fail::fail_point!("relay.after_provider");
                metrics::counter!("seatgrid_payment_requests_total", "kind" => what).increment(1);
                tracing::info!(%order_id, kind = what, "asked the payment provider");
                Ok(())
            }
            Err(e) => self.refused_or_retry(what, order_id, e),
        }
    }

    /// A provider that is down retries the batch; a refusal for good is logged and passed over.
    fn refused_or_retry(
        &self,
        what: &'static str,
        order_id: &str,
        e: ProviderError,
    ) -> Result<(), ProjectionError> {
        match e {
            ProviderError::Unavailable(why) => Err(ProjectionError::External(format!(
                "{what} for order {order_id}: {why}"
            ))),
            ProviderError::Refused(why) => {
                metrics::counter!("seatgrid_payment_requests_refused_total", "kind" => what)
                    .increment(1);
                tracing::error!(%order_id, kind = what, %why, "the payment provider refused the request");
                Ok(())
            }
        }
    }
}

#[async_trait]
impl Projection for PaymentRelay {
    type AfterCommit = ();

    fn name(&self) -> &'static str {
        PAYMENT_REQUESTS
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[domain::stored::aggregate_type::ORDER])
    }

    async fn apply(
        &self,
        _tx: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        for e in events {
            if let Ok(Some(StoredEvent::Order(order))) =
                StoredEvent::decode(&e.aggregate_type, e.payload.get())
            {
                self.send(e, &order).await?;
            }
        }
        Ok(())
    }

    async fn after_commit(&self, _: ()) {}

    async fn reset(&self, _tx: &mut PgConnection) -> Result<(), ProjectionError> {
        // Nothing is kept: a replay asks again, which the provider answers idempotently.
        Ok(())
    }
}
