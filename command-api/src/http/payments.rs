//! `POST /api/payments/webhook`: where the payment provider tells how a payment (or a refund)
//! ended.
//!
//! Policy: the raw body must carry a valid, recent `Seatgrid-Signature` made with the webhook
//! secret (`booking::payments`); anything else is 401 before the body is read as JSON (a request
//! without the header is 401 whether or not payments are configured). A valid
//! notification is recorded on its order and answered 200, also when it was received before
//! (each provider event id counts once), so the provider stops re-sending it. Without a
//! configured secret the endpoint answers 404: payments are not set up.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use booking::payments::{verify, WebhookEvent, SIGNATURE_HEADER};
use secrecy::ExposeSecret;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, Problem};
use super::extract::Context;
use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(webhook))
}

/// Receives a signed notification from the payment provider.
#[utoipa::path(post, path = "/payments/webhook", tag = "payments",
    params(("Seatgrid-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\">")),
    request_body(content = String, content_type = "application/json", description = "The provider's event"),
    responses(
        (status = 200, description = "Recorded (or recorded before)"),
        (status = 401, description = "Missing, wrong or stale signature", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order, or payments are not configured", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a provider event, or another amount than the order's", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn webhook(
    State(state): State<AppState>,
    ctx: Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if signature.is_empty() {
        return Err(booking::payments::SignatureError::Malformed.into());
    }
    let Some(secret) = &state.webhook_secret else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "payments_not_configured",
            "this server takes no payment notifications (PAYMENTS_WEBHOOK_SECRET is not set)",
        ));
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let refused = |kind: &'static str| {
        metrics::counter!("seatgrid_payment_webhooks_total", "type" => kind, "outcome" => "refused")
            .increment(1);
    };
    if let Err(e) = verify(secret.expose_secret().as_bytes(), signature, &body, now) {
        refused("unknown");
        return Err(e.into());
    }
    let event: WebhookEvent = serde_json::from_slice(&body).map_err(|e| {
        refused("unknown");
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("not a payment notification: {e}"),
        )
    })?;
    let kind = match event.kind {
        booking::payments::WebhookType::PaymentSucceeded => "payment_succeeded",
        booking::payments::WebhookType::PaymentFailed => "payment_failed",
        booking::payments::WebhookType::RefundSucceeded => "refund_succeeded",
    };
    if let Err(e) = state.service.record_payment(event, &ctx.0).await {
        refused(kind);
        return Err(e.into());
    }
    fail::fail_point!("webhook.after_record");
    metrics::counter!("seatgrid_payment_webhooks_total", "type" => kind, "outcome" => "recorded")
        .increment(1);
    Ok(StatusCode::OK)
}
