//! The order saga survives `kill -9` at each of its steps: `seatgrid serve` runs as its own
//! process with a fail point paused at one step (the `failpoints` feature: `FAILPOINTS` names the
//! step), the test waits until the sale is frozen exactly there, kills the process with SIGKILL,
//! starts it again without fail points, and checks that the order ends confirmed with its seats
//! booked and one payment, and that a client retrying with its idempotency key is answered the
//! same order.
//!
//! Steps: the holds extended but the order not yet written; the provider asked but the relay's
//! checkpoint not moved; the payment recorded but the webhook not answered; one of the order's
//! two holds booked; every seat booked but the order not confirmed.

use std::time::Duration;

use booking::Role;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::payments_mock::{free_port, MockProcess, SECRET as WEBHOOK_SECRET};
use crate::processes::{bearer, create_event, strong_seats, Server, AUTH_SECRET};

/// A database, a mock provider and a server frozen at `failpoint`; an event (two rows, so two
/// seat blocks) and two holds of alice, one per row.
async fn frozen_sale(failpoint: &str) -> (Server, MockProcess, PgPool, String, Vec<String>) {
    let (db_url, pool) = migrations::testing::fresh_database(4).await;
    let (api, provider) = (free_port(), free_port());
    let env: Vec<(String, String)> = [
        ("DATABASE_URL", db_url),
        ("REDIS_URL", crate::helpers::redis_url()),
        (
            "SEATGRID_REDIS_PREFIX",
            format!("sgsaga:{}:", uuid::Uuid::new_v4().simple()),
        ),
        ("SEATGRID_LISTEN", format!("127.0.0.1:{api}")),
        ("SEATGRID_RATE_LIMITS", "off".into()),
        ("SEATGRID_SWEEP_SECONDS", "1".into()),
        ("CLICKHOUSE_URL", "off".into()),
        ("AUTH_HS256_SECRET", AUTH_SECRET.into()),
        ("PAYMENTS_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        (
            "PAYMENTS_PROVIDER_URL",
            format!("http://127.0.0.1:{provider}"),
        ),
        ("RUST_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let server = Server::start(env, Some(&format!("{failpoint}=1*pause")));
    server.ready().await;
    let mock = MockProcess::start_on(
        provider,
        &format!("{}/api/payments/webhook", server.url),
        &[("PAYMENTS_MOCK_FAILURE_RATE", "0")],
    );
    let client = reqwest::Client::new();
    let event_id = create_event(&server.url, "Saga night", 2, 5, 4000).await;
    let mut holds = Vec::new();
    for seats in [json!([0, 1]), json!([5])] {
        let hold: Value = client
            .post(format!("{}/api/events/{event_id}/holds", server.url))
            .header("authorization", bearer("alice", Role::Buyer))
            .json(&json!({ "seats": seats }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        holds.push(hold["hold_id"].as_str().unwrap().to_owned());
    }
    (server, mock, pool, event_id, holds)
}

/// Places alice's order (key `order-1`), giving up after `wait` (a frozen server never answers).
/// While a run of the same key that died with its server is not yet stale (60 s), the key
/// answers 409 `idempotency_request_in_flight`: the client tries again, as a real one would.
async fn place(server: &Server, holds: &[String], wait: Duration) -> Option<Value> {
    let until = std::time::Instant::now() + wait;
    loop {
        let sent = reqwest::Client::new()
            .post(format!("{}/api/orders", server.url))
            .header("authorization", bearer("alice", Role::Buyer))
            .header("idempotency-key", "order-1")
            .json(&json!({ "hold_ids": holds }))
            .timeout(until.saturating_duration_since(std::time::Instant::now()))
            .send()
            .await
            .ok()?;
        if sent.status() == 409 && std::time::Instant::now() < until {
            let problem: Value = sent.json().await.unwrap();
            assert_eq!(
                problem["code"], "idempotency_request_in_flight",
                "{problem}"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        assert_eq!(sent.status(), 201);
        return sent.json().await.ok();
    }
}

async fn count(pool: &PgPool, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Waits until `ready` says the frozen step was reached (up to 20 s).
async fn reached(pool: &PgPool, what: &str, ready: impl Fn(i64) -> bool, event_type: &str) {
    for _ in 0..200 {
        if ready(count(pool, event_type).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the sale never reached {what}");
}

/// After the restart: the order ends confirmed, alice's three seats booked, one payment.
async fn ends_well(server: &Server, pool: &PgPool, event_id: &str, holds: &[String]) {
    // The client retries with its key and is answered the same order.
    let order = place(server, holds, Duration::from_secs(90))
        .await
        .expect("the retried order is answered");
    let order_id = order["order_id"].as_str().unwrap().to_owned();
    let mut status = Value::Null;
    for _ in 0..200 {
        let read: Value = reqwest::Client::new()
            .get(format!("{}/api/orders/{order_id}", server.url))
            .header("authorization", bearer("alice", Role::Buyer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        status = read["status"].clone();
        if status == "confirmed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "confirmed");
    assert_eq!(strong_seats(&server.url, event_id).await, "BBAAABAAAA");
    assert_eq!(count(pool, "OrderPlaced").await, 1, "one order");
    assert_eq!(count(pool, "PaymentSucceeded").await, 1, "charged once");
    assert_eq!(count(pool, "OrderConfirmed").await, 1);
}

/// Freezes the sale at `failpoint`, waits until `event_type` was stored `frozen_at` times (the
/// step's mark), kills the server and checks the restarted one finishes the order.
async fn crash_at(failpoint: &str, event_type: &str, frozen_at: i64) {
    let (server, _mock, pool, event, holds) = frozen_sale(failpoint).await;
    // Frozen before the order exists, the buyer gets no answer; else the order is placed.
    let answered = place(&server, &holds, Duration::from_secs(3)).await;
    assert_eq!(answered.is_some(), failpoint != "place_order.before_order");
    reached(&pool, failpoint, |n| n == frozen_at, event_type).await;
    if failpoint.starts_with("settle.") {
        // The order process itself is frozen: the order cannot be confirmed yet.
        assert_eq!(
            count(&pool, "OrderConfirmed").await,
            0,
            "frozen before the end"
        );
    }
    let server = server.kill_and_restart().await;
    ends_well(&server, &pool, &event, &holds).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_holds_were_extended_but_before_the_order_was_written() {
    crash_at("place_order.before_order", "HoldExtended", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_provider_was_asked_but_before_the_relay_moved_on() {
    // Frozen once the provider's payment is recorded on the order.
    crash_at("relay.after_provider", "PaymentRequested", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_payment_was_recorded_but_before_the_webhook_was_answered() {
    // The provider never got its 200: it delivers again to the restarted server.
    crash_at("webhook.after_record", "PaymentSucceeded", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_with_one_of_the_orders_two_holds_booked() {
    crash_at("settle.after_hold", "SeatBooked", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_with_every_seat_booked_but_the_order_not_confirmed() {
    crash_at("settle.before_confirm", "SeatBooked", 2).await;
}
