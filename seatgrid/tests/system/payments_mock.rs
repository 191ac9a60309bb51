//! `seatgrid payments-mock` as its own process: intents answered by signed webhooks, idempotent
//! per key, and the unreliable deliveries real providers make (twice, refused then retried).

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use booking::payments::{verify, WebhookEvent, WebhookType, SIGNATURE_HEADER};
use serde_json::{json, Value};

pub(crate) const SECRET: &str = "whsec_mock_test";

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What the webhook receiver got, in order; it refuses the first `refuse` deliveries with 500.
#[derive(Clone, Default)]
struct Received {
    events: Arc<Mutex<Vec<WebhookEvent>>>,
    refuse: Arc<Mutex<u32>>,
}

/// A webhook receiver that checks every signature (a bad one fails the test).
async fn receiver(received: Received) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let received = received.clone();
            async move {
                let signature = headers[SIGNATURE_HEADER].to_str().unwrap();
                let now = chrono::Utc::now().timestamp();
                verify(SECRET.as_bytes(), signature, &body, now).expect("a valid signature");
                {
                    let mut refuse = received.refuse.lock().unwrap();
                    if *refuse > 0 {
                        *refuse -= 1;
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                }
                let event: WebhookEvent = serde_json::from_slice(&body).unwrap();
                received.events.lock().unwrap().push(event);
                StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

pub(crate) struct MockProcess {
    child: Child,
    url: String,
}

impl MockProcess {
    fn start(webhook_url: &str, extra: &[(&str, &str)]) -> Self {
        Self::start_on(free_port(), webhook_url, extra)
    }

    pub(crate) fn start_on(port: u16, webhook_url: &str, extra: &[(&str, &str)]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_seatgrid"))
            .arg("payments-mock")
            .env("PAYMENTS_MOCK_LISTEN", format!("127.0.0.1:{port}"))
            .env("PAYMENTS_MOCK_WEBHOOK_URL", webhook_url)
            .env("PAYMENTS_MOCK_DELAY_MS", "50")
            .env("PAYMENTS_MOCK_DUPLICATE_RATE", "0")
            .env("PAYMENTS_MOCK_LATE_RATE", "0")
            .env("PAYMENTS_WEBHOOK_SECRET", SECRET)
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .expect("the seatgrid binary runs");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn intent(&self, key: &str, body: Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/payment_intents", self.url))
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn events_within(received: &Received, n: usize, within: Duration) -> Vec<WebhookEvent> {
    let started = std::time::Instant::now();
    while started.elapsed() < within {
        if received.events.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    received.events.lock().unwrap().clone()
}

#[tokio::test]
async fn a_payment_is_answered_by_a_signed_webhook_and_one_key_never_charges_twice() {
    let received = Received::default();
    let mock = MockProcess::start(&receiver(received.clone()).await, &[]);
    let order = uuid::Uuid::new_v4();
    let body =
        json!({"order_id": order, "amount_cents": 9000, "currency": "EUR", "outcome": "succeed"});
    let (status, first) = mock.intent(&order.to_string(), body.clone()).await;
    assert_eq!(
        (status, first["status"].as_str()),
        (200, Some("processing"))
    );
    let (_, again) = mock.intent(&order.to_string(), body).await;
    assert_eq!(again["id"], first["id"], "the same key is the same payment");
    let other = json!({"order_id": order, "amount_cents": 1, "currency": "EUR"});
    assert_eq!(mock.intent(&order.to_string(), other).await.0, 409);

    let events = events_within(&received, 1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        received.events.lock().unwrap().len(),
        1,
        "one payment, one result"
    );
    assert_eq!(events[0].kind, WebhookType::PaymentSucceeded);
    assert_eq!(events[0].data.object.order_id, order);
    assert_eq!(events[0].data.object.id, first["id"].as_str().unwrap());
    let read: Value = reqwest::get(format!(
        "{}/v1/payment_intents/{}",
        mock.url, events[0].data.object.id
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(read["status"], "succeeded");

    // And the money can be given back, once per key.
    let refund = |key: &'static str| {
        let url = format!("{}/v1/refunds", mock.url);
        let intent = first["id"].clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .header("idempotency-key", key)
                .json(&json!({"payment_intent": intent}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let refunded = refund("refund-1").await;
    assert_eq!(refund("refund-1").await["id"], refunded["id"]);
    let events = events_within(&received, 2, Duration::from_secs(5)).await;
    assert_eq!(events[1].kind, WebhookType::RefundSucceeded);
    assert_eq!(events[1].data.object.id, refunded["id"].as_str().unwrap());
}

#[tokio::test]
async fn failures_duplicates_refusals_and_silence_are_what_real_providers_send() {
    let received = Received::default();
    *received.refuse.lock().unwrap() = 1;
    let mock = MockProcess::start(
        &receiver(received.clone()).await,
        &[("PAYMENTS_MOCK_DUPLICATE_RATE", "1")],
    );
    let failing = uuid::Uuid::new_v4();
    let silent = uuid::Uuid::new_v4();
    let body = |order: uuid::Uuid, outcome: &str| json!({"order_id": order, "amount_cents": 500, "currency": "EUR", "outcome": outcome});
    mock.intent(&failing.to_string(), body(failing, "fail"))
        .await;
    mock.intent(&silent.to_string(), body(silent, "never"))
        .await;
    // The first delivery is refused (500) and retried; then every event comes twice.
    let events = events_within(&received, 2, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0], events[1], "a duplicate has the same event id");
    assert_eq!(events[0].kind, WebhookType::PaymentFailed);
    assert_eq!(
        events[0].data.object.failure_reason.as_deref(),
        Some("card_declined")
    );
    assert!(
        received
            .events
            .lock()
            .unwrap()
            .iter()
            .all(|e| e.data.object.order_id == failing),
        "a payment that never answers sends nothing"
    );
}

#[tokio::test]
async fn the_mock_refuses_to_start_without_a_webhook_secret_and_requests_without_a_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_seatgrid"))
        .arg("payments-mock")
        .env_remove("PAYMENTS_WEBHOOK_SECRET")
        .env("PAYMENTS_MOCK_LISTEN", format!("127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PAYMENTS_WEBHOOK_SECRET"));

    let mock = MockProcess::start("http://127.0.0.1:9/none", &[]);
    let response = reqwest::Client::new()
        .post(format!("{}/v1/payment_intents", mock.url))
        .json(&json!({"order_id": uuid::Uuid::new_v4(), "amount_cents": 1, "currency": "EUR"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}
