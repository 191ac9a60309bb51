//! The development payment adapter: [`PaymentProvider`] over HTTP, in the shape of Stripe's API
//! (`POST /v1/payment_intents`, `POST /v1/refunds`, `Idempotency-Key` headers), which
//! `seatgrid payments-mock` answers.
//!
//! Policy: a network error, a timeout, a 5xx or a 429 is `Unavailable` (the caller asks again
//! with the same key); any other refusal is `Refused`. The production path is a Stripe adapter
//! implementing the same port (see docs/PAYMENTS.md): Stripe's own endpoints take the same keys,
//! and its webhooks are verified by the same signature scheme.

use std::time::Duration;

use async_trait::async_trait;
use booking::payments::{
    PaymentProvider, PaymentRequest, PaymentStarted, ProviderError, RefundRequest,
};
use serde_json::json;

pub struct HttpProvider {
    base_url: String,
    client: reqwest::Client,
}

impl HttpProvider {
    /// A provider whose API is at `base_url` (e.g. `http://127.0.0.1:5099`).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
        }
    }

    async fn post(
        &self,
        path: &str,
        key: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, ProviderError> {
        let sent = self
            .client
            .post(format!("{}{path}", self.base_url))
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        let status = sent.status();
        if status.is_success() {
            return sent.json().await.map_err(|e| {
                ProviderError::Unavailable(format!("{path}: unreadable answer: {e}"))
            });
        }
        let text = sent.text().await.unwrap_or_default();
        let why = format!("{path} answered {status}: {text}");
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(ProviderError::Unavailable(why))
        } else {
            Err(ProviderError::Refused(why))
        }
    }
}

#[async_trait]
impl PaymentProvider for HttpProvider {
    async fn request_payment(
        &self,
        request: &PaymentRequest,
    ) -> Result<PaymentStarted, ProviderError> {
        let body = json!({
            "order_id": request.order_id,
            "amount_cents": request.amount_cents,
            "currency": request.currency,
        });
        let intent = self
            .post("/v1/payment_intents", &request.order_id.to_string(), body)
            .await?;
        let Some(id) = intent["id"].as_str() else {
            return Err(ProviderError::Refused(format!(
                "a payment intent without an id: {intent}"
            )));
        };
        Ok(PaymentStarted {
            payment_intent: id.to_owned(),
            payment_url: Some(format!("{}/v1/payment_intents/{id}", self.base_url)),
        })
    }

    async fn request_refund(&self, request: &RefundRequest) -> Result<(), ProviderError> {
        let key = format!("refund-{}", request.order_id);
        let body = json!({ "payment_intent": request.payment_intent });
        self.post("/v1/refunds", &key, body).await.map(|_| ())
    }
}
