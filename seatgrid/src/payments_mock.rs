//! `seatgrid payments-mock`: a development payment provider that runs as its own process.
//!
//! Policy:
//! - It behaves like a card processor seen from outside. `POST /v1/payment_intents` (with an
//!   `Idempotency-Key`: the order id) answers at once with a `processing` intent; the result comes
//!   later by a signed webhook (`booking::payments`) after `PAYMENTS_MOCK_DELAY_MS` (200). A share
//!   of payments fail (`PAYMENTS_MOCK_FAILURE_RATE`, 0.1). Like real providers it sometimes
//!   delivers a webhook twice (`PAYMENTS_MOCK_DUPLICATE_RATE`, 0.05) or late
//!   (`PAYMENTS_MOCK_LATE_RATE`, 0.05, by `PAYMENTS_MOCK_LATE_BY_MS`, 2000), so deliveries also
//!   arrive out of order.
//! - The same idempotency key with the same request answers the same intent and never charges
//!   twice; with a different request it is refused (409).
//! - A delivery that does not get a 2xx is retried with backoff, up to [`DELIVERY_ATTEMPTS`].
//! - A share of payments is never answered (`PAYMENTS_MOCK_SILENCE_RATE`, 0), as when a
//!   provider loses them: their orders expire unpaid.
//! - A request may force its outcome (`"outcome": "succeed" | "fail" | "never"`), for tests.
//! - `POST /v1/refunds` (`{"payment_intent": id}`, with an idempotency key) gives a succeeded
//!   payment back and answers by a `refund.succeeded` webhook.
//! - The webhook secret (`PAYMENTS_WEBHOOK_SECRET`) is required and never printed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use booking::payments::{
    sign, WebhookData, WebhookEvent, WebhookObject, WebhookType, SIGNATURE_HEADER,
};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// How many times a webhook is sent before the mock gives up on it.
pub const DELIVERY_ATTEMPTS: u32 = 6;

fn default_listen() -> String {
    "127.0.0.1:5099".into()
}
fn default_webhook_url() -> String {
    "http://127.0.0.1:5000/api/payments/webhook".into()
}
fn default_delay_ms() -> u64 {
    200
}
fn default_failure_rate() -> f64 {
    0.1
}
fn default_rare() -> f64 {
    0.05
}
fn default_late_by_ms() -> u64 {
    2_000
}

/// The mock's settings (`PAYMENTS_MOCK_*`), read from the environment.
#[derive(Debug, Clone, Deserialize)]
pub struct MockSettings {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_webhook_url")]
    pub webhook_url: String,
    #[serde(default = "default_delay_ms")]
    pub delay_ms: u64,
    #[serde(default = "default_failure_rate")]
    pub failure_rate: f64,
    #[serde(default = "default_rare")]
    pub duplicate_rate: f64,
    #[serde(default = "default_rare")]
    pub late_rate: f64,
    #[serde(default = "default_late_by_ms")]
    pub late_by_ms: u64,
    /// Share of payments never answered (lost, as in a provider outage).
    #[serde(default)]
    pub silence_rate: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum MockError {
    #[error("PAYMENTS_MOCK_* settings: {0}")]
    Settings(String),
    #[error("PAYMENTS_WEBHOOK_SECRET must be set: the mock signs every webhook with it")]
    NoSecret,
    #[error("cannot listen on {0}: {1}")]
    Listen(String, std::io::Error),
}

impl MockSettings {
    pub fn from_env() -> Result<(Self, SecretString), MockError> {
        let settings: Self = envy::prefixed("PAYMENTS_MOCK_")
            .from_env()
            .map_err(|e| MockError::Settings(e.to_string()))?;
        for (name, rate) in [
            ("FAILURE_RATE", settings.failure_rate),
            ("DUPLICATE_RATE", settings.duplicate_rate),
            ("LATE_RATE", settings.late_rate),
            ("SILENCE_RATE", settings.silence_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(MockError::Settings(format!(
                    "{name} must be between 0 and 1"
                )));
            }
        }
        let secret = std::env::var("PAYMENTS_WEBHOOK_SECRET")
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or(MockError::NoSecret)?;
        Ok((settings, SecretString::from(secret)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Succeed,
    Fail,
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct IntentRequest {
    order_id: uuid::Uuid,
    amount_cents: u64,
    currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
}

#[derive(Debug, Clone, Serialize)]
struct Intent {
    id: String,
    status: &'static str,
    #[serde(flatten)]
    request: IntentRequest,
}

struct Mock {
    settings: MockSettings,
    secret: SecretString,
    client: reqwest::Client,
    /// Intents by idempotency key, and the key of each intent id.
    intents: Mutex<HashMap<String, Intent>>,
    keys: Mutex<HashMap<String, String>>,
    refunds: Mutex<HashMap<String, String>>,
}

type Shared = Arc<Mock>;

fn problem(status: StatusCode, detail: &str) -> (StatusCode, Json<serde_json::Value>) {
    (
        status,
        Json(serde_json::json!({"status": status.as_u16(), "detail": detail})),
    )
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, (StatusCode, Json<serde_json::Value>)> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .map(str::to_owned)
        .ok_or_else(|| {
            problem(
                StatusCode::BAD_REQUEST,
                "an Idempotency-Key header is required",
            )
        })
}

async fn create_intent(
    State(mock): State<Shared>,
    headers: HeaderMap,
    Json(request): Json<IntentRequest>,
) -> Result<Json<Intent>, (StatusCode, Json<serde_json::Value>)> {
    let key = idempotency_key(&headers)?;
    let intent = {
        let mut intents = mock.intents.lock().unwrap();
        if let Some(existing) = intents.get(&key) {
            if existing.request != request {
                return Err(problem(
                    StatusCode::CONFLICT,
                    "this Idempotency-Key was used with another request",
                ));
            }
            return Ok(Json(existing.clone()));
        }
        let intent = Intent {
            id: format!("pi_{}", uuid::Uuid::new_v4().simple()),
            status: "processing",
            request,
        };
        intents.insert(key.clone(), intent.clone());
        mock.keys
            .lock()
            .unwrap()
            .insert(intent.id.clone(), key.clone());
        intent
    };
    tokio::spawn(settle(mock.clone(), key, intent.clone()));
    Ok(Json(intent))
}

async fn read_intent(
    State(mock): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Intent>, (StatusCode, Json<serde_json::Value>)> {
    let key = mock.keys.lock().unwrap().get(&id).cloned();
    key.and_then(|k| mock.intents.lock().unwrap().get(&k).cloned())
        .map(Json)
        .ok_or_else(|| problem(StatusCode::NOT_FOUND, "no such payment intent"))
}

#[derive(Deserialize)]
struct RefundRequest {
    payment_intent: String,
}

async fn create_refund(
    State(mock): State<Shared>,
    headers: HeaderMap,
    Json(request): Json<RefundRequest>,
) -> Result<Json<serde_json::Value>, (StatusCode, Json<serde_json::Value>)> {
    let key = idempotency_key(&headers)?;
    if let Some(id) = mock.refunds.lock().unwrap().get(&key) {
        return Ok(Json(serde_json::json!({"id": id, "status": "pending"})));
    }
    let intent_key = mock
        .keys
        .lock()
        .unwrap()
        .get(&request.payment_intent)
        .cloned();
    let intent = intent_key.and_then(|k| mock.intents.lock().unwrap().get(&k).cloned());
    let Some(intent) = intent else {
        return Err(problem(StatusCode::NOT_FOUND, "no such payment intent"));
    };
    if intent.status != "succeeded" {
        return Err(problem(
            StatusCode::CONFLICT,
            "only a succeeded payment can be refunded",
        ));
    }
    let id = format!("re_{}", uuid::Uuid::new_v4().simple());
    mock.refunds.lock().unwrap().insert(key, id.clone());
    let object = WebhookObject {
        id: id.clone(),
        order_id: intent.request.order_id,
        amount_cents: intent.request.amount_cents,
        currency: intent.request.currency.clone(),
        failure_reason: None,
    };
    let mock2 = mock.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(mock2.settings.delay_ms)).await;
        notify(&mock2, WebhookType::RefundSucceeded, object).await;
    });
    Ok(Json(serde_json::json!({"id": id, "status": "pending"})))
}

/// Decides an intent after the delay and tells the webhook.
async fn settle(mock: Shared, key: String, intent: Intent) {
    tokio::time::sleep(Duration::from_millis(mock.settings.delay_ms)).await;
    let outcome = intent.request.outcome.unwrap_or_else(|| {
        let mut rng = rand::rng();
        if rng.random_bool(mock.settings.silence_rate) {
            Outcome::Never
        } else if rng.random_bool(mock.settings.failure_rate) {
            Outcome::Fail
        } else {
            Outcome::Succeed
        }
    });
    let (status, kind, reason) = match outcome {
        Outcome::Never => return,
        Outcome::Succeed => ("succeeded", WebhookType::PaymentSucceeded, None),
        Outcome::Fail => (
            "failed",
            WebhookType::PaymentFailed,
            Some("card_declined".to_owned()),
        ),
    };
    if let Some(stored) = mock.intents.lock().unwrap().get_mut(&key) {
        stored.status = status;
    }
    let object = WebhookObject {
        id: intent.id,
        order_id: intent.request.order_id,
        amount_cents: intent.request.amount_cents,
        currency: intent.request.currency,
        failure_reason: reason,
    };
    notify(&mock, kind, object).await;
}

/// Sends one notification, sometimes late and sometimes twice (the same event id).
async fn notify(mock: &Mock, kind: WebhookType, object: WebhookObject) {
    let event = WebhookEvent {
        id: format!("evt_{}", uuid::Uuid::new_v4().simple()),
        kind,
        created: chrono::Utc::now().timestamp(),
        data: WebhookData { object },
    };
    let (late, twice) = {
        let mut rng = rand::rng();
        (
            rng.random_bool(mock.settings.late_rate),
            rng.random_bool(mock.settings.duplicate_rate),
        )
    };
    if late {
        tokio::time::sleep(Duration::from_millis(mock.settings.late_by_ms)).await;
    }
    deliver(mock, &event).await;
    if twice {
        deliver(mock, &event).await;
    }
}

/// Posts a signed event until it gets a 2xx, with backoff.
async fn deliver(mock: &Mock, event: &WebhookEvent) {
    let body = serde_json::to_vec(event).expect("events serialize");
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=DELIVERY_ATTEMPTS {
        let signature = sign(
            mock.secret.expose_secret().as_bytes(),
            chrono::Utc::now().timestamp(),
            &body,
        );
        let sent = mock
            .client
            .post(&mock.settings.webhook_url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => {
                tracing::warn!(event = %event.id, attempt, status = %r.status(), "webhook refused")
            }
            Err(e) => {
                tracing::warn!(event = %event.id, attempt, error = %e, "webhook not delivered")
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    tracing::error!(event = %event.id, "webhook given up after {DELIVERY_ATTEMPTS} attempts");
}

/// The mock's routes.
fn router(mock: Shared) -> Router {
    Router::new()
        .route("/v1/payment_intents", post(create_intent))
        .route("/v1/payment_intents/{id}", get(read_intent))
        .route("/v1/refunds", post(create_refund))
        .route("/health", get(|| async { "ok" }))
        .with_state(mock)
}

/// Serves until the process is stopped.
pub async fn serve(settings: MockSettings, secret: SecretString) -> Result<(), MockError> {
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .map_err(|e| MockError::Listen(settings.listen.clone(), e))?;
    println!(
        "payments mock on http://{} (webhooks to {}, delay {} ms, failure rate {})",
        settings.listen, settings.webhook_url, settings.delay_ms, settings.failure_rate
    );
    let mock = Arc::new(Mock {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client"),
        settings,
        secret,
        intents: Mutex::new(HashMap::new()),
        keys: Mutex::new(HashMap::new()),
        refunds: Mutex::new(HashMap::new()),
    });
    axum::serve(listener, router(mock))
        .await
        .map_err(|e| MockError::Listen("(serving)".into(), e))
}
