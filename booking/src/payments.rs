//! Payments as the core sees them: what a payment provider notifies (a webhook event), and how a
//! notification proves it is the provider's own and recent (its signature).
//!
//! Policy:
//! - A webhook carries `Seatgrid-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` computed over
//!   `"<t>.<raw body>"` with the webhook secret shared with the provider (Stripe's scheme, so a
//!   Stripe adapter verifies the same way). Several `v1` entries may be present (secret rotation);
//!   one match is enough. Signatures are compared in constant time.
//! - A signature older or newer than [`TOLERANCE`] is refused, so a captured webhook cannot be
//!   replayed later; within the window, replays are harmless because every provider event id
//!   counts once (see `domain::order`).
//! - The order id is the provider's idempotency key, so asking twice never charges twice; a
//!   refund's key is `refund-<order id>`, so an order is refunded once however often it is asked.
//! - A provider is reached through [`PaymentProvider`] (the port); the development adapter speaks
//!   to `seatgrid payments-mock`, and a production adapter (Stripe) implements the same two calls.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The header a signed webhook carries.
pub const SIGNATURE_HEADER: &str = "seatgrid-signature";

/// How far a webhook's timestamp may be from now.
pub const TOLERANCE: Duration = Duration::from_secs(300);

/// What kind of news a webhook brings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebhookType {
    #[serde(rename = "payment_intent.succeeded")]
    PaymentSucceeded,
    #[serde(rename = "payment_intent.payment_failed")]
    PaymentFailed,
    #[serde(rename = "refund.succeeded")]
    RefundSucceeded,
}

/// The payment (or refund) a webhook is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookObject {
    /// The payment intent's (or refund's) id at the provider.
    pub id: String,
    /// The order the payment is for (the idempotency key it was asked with).
    pub order_id: uuid::Uuid,
    pub amount_cents: u64,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
}

/// A provider's notification, as posted to `POST /api/payments/webhook`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// Unique per notification; a second delivery of the same notification has the same id.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: WebhookType,
    /// When the provider created the event (unix seconds).
    pub created: i64,
    pub data: WebhookData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookData {
    pub object: WebhookObject,
}

/// A payment to ask of the provider (what an `OrderPlaced` says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    pub order_id: uuid::Uuid,
    pub amount_cents: u64,
    pub currency: String,
}

/// A refund to ask of the provider (what a `RefundRequested` says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub order_id: uuid::Uuid,
    /// The provider's id of the payment to give back.
    pub payment_intent: String,
}

/// The provider's answer to a payment request: its id for the payment, and where the buyer pays
/// (a hosted page; the mock's status page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentStarted {
    pub payment_intent: String,
    pub payment_url: Option<String>,
}

/// Why the provider did not take a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Down, timed out or overloaded: ask again later (the same key, so nothing doubles).
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refuses this request for good.
    #[error("the payment provider refused the request: {0}")]
    Refused(String),
}

/// The port to a payment provider. Both calls are idempotent by their keys (see the policy) and
/// answer once the provider has the request; the outcome arrives later, by a signed webhook.
#[async_trait::async_trait]
pub trait PaymentProvider: Send + Sync {
    async fn request_payment(
        &self,
        request: &PaymentRequest,
    ) -> Result<PaymentStarted, ProviderError>;
    async fn request_refund(&self, request: &RefundRequest) -> Result<(), ProviderError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing or malformed")]
    Malformed,
    #[error("no signature matches")]
    Mismatch,
    #[error("the signature is {0} s away from now; at most {max} s are accepted", max = TOLERANCE.as_secs())]
    Stale(i64),
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let signature = hex::encode(mac(secret, timestamp, body).finalize().into_bytes());
    format!("t={timestamp},v1={signature}")
}

/// Checks `header` against `body` at `now` (unix seconds).
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => {
                signatures.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?)
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let matches = signatures
        .iter()
        .any(|s| mac(secret, timestamp, body).verify_slice(s).is_ok());
    if !matches {
        return Err(SignatureError::Mismatch);
    }
    let age = now - timestamp;
    if age.unsigned_abs() > TOLERANCE.as_secs() {
        return Err(SignatureError::Stale(age));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test";
    const BODY: &[u8] = br#"{"id":"evt_1"}"#;

    #[test]
    fn a_signature_made_with_the_secret_verifies_within_the_window() {
        let header = sign(SECRET, 1_000, BODY);
        assert_eq!(verify(SECRET, &header, BODY, 1_000), Ok(()));
        assert_eq!(verify(SECRET, &header, BODY, 1_299), Ok(()));
        // Another secret listed beside the right one (rotation) still verifies.
        let other = sign(b"old", 1_000, BODY);
        let both = format!("{header},{}", other.split(',').nth(1).unwrap());
        assert_eq!(verify(SECRET, &both, BODY, 1_000), Ok(()));
    }

    #[test]
    fn a_changed_body_another_secret_or_an_old_timestamp_is_refused() {
        let header = sign(SECRET, 1_000, BODY);
        assert_eq!(
            verify(SECRET, &header, br#"{"id":"evt_2"}"#, 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"guess", &header, BODY, 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, &header, BODY, 1_301),
            Err(SignatureError::Stale(301))
        );
        // A timestamp moved forward breaks the signature rather than passing the window.
        let moved = header.replace("t=1000", "t=1300");
        assert_eq!(
            verify(SECRET, &moved, BODY, 1_301),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_malformed_header_is_refused() {
        for header in ["", "t=1000", "v1=00", "t=x,v1=00", "t=1000,v1=zz"] {
            assert_eq!(
                verify(SECRET, header, BODY, 1_000),
                Err(SignatureError::Malformed),
                "{header}"
            );
        }
    }

    #[test]
    fn webhook_events_read_and_write_the_providers_shape() {
        let event: WebhookEvent = serde_json::from_value(serde_json::json!({
            "id": "evt_1", "type": "payment_intent.payment_failed", "created": 1000,
            "data": {"object": {"id": "pi_1", "order_id": "00000000-0000-0000-0000-000000000001",
                                "amount_cents": 9000, "currency": "EUR",
                                "failure_reason": "card_declined"}}
        }))
        .unwrap();
        assert_eq!(event.kind, WebhookType::PaymentFailed);
        assert_eq!(
            event.data.object.failure_reason.as_deref(),
            Some("card_declined")
        );
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "payment_intent.payment_failed");
    }
}
