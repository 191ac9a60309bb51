//! Placing an order through the application core (REST and GraphQL come with payments): holds
//! taken into one order, their expiry moved to the payment window, the seats priced.

use booking::{BookingCommands, BookingService, Caller, CommandError, EventStore, RequestContext};
use chrono::Utc;
use domain::{HoldId, OrderId, OrderStatus};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

fn core(app: &TestApp) -> BookingService {
    BookingService::new(
        EventStore::new(app.pool.clone(), Default::default()),
        Default::default(),
    )
}

fn keyed(key: &str) -> RequestContext {
    RequestContext {
        correlation_id: "test".into(),
        id_seed: Some(key.into()),
    }
}

fn hold_id(hold: &Value) -> HoldId {
    HoldId(hold["hold_id"].as_str().unwrap().parse().unwrap())
}

#[tokio::test]
async fn an_order_takes_the_buyers_holds_moves_their_expiry_and_prices_the_seats() {
    let app = spawn_app().await;
    let event = app
        .create_grid_event(2, 5, json!({"hold_seconds": 60}))
        .await;
    let first = app.hold_ok(&event, "alice", json!([0])).await;
    let second = app.hold_ok(&event, "alice", json!([5, 6])).await;
    let alice = Caller::buyer("alice").unwrap();
    let core = core(&app);
    let holds = [hold_id(&first), hold_id(&second)];

    let order = core
        .place_order(holds.to_vec(), &alice, &keyed("o-1"))
        .await
        .unwrap();
    assert_eq!(order.status, OrderStatus::PendingPayment);
    assert_eq!(order.amount_cents, 3 * 2500);
    assert_eq!(order.seats.len(), 3);
    let window = order.payment_due - Utc::now();
    assert!(
        window > chrono::Duration::minutes(9),
        "payment due in {window}"
    );
    // The holds now last until the payment is due.
    for hold in [&first, &second] {
        let now: Value = app
            .as_customer(
                reqwest::Method::GET,
                &format!("/api/holds/{}", hold["hold_id"].as_str().unwrap()),
                "alice",
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(now["status"], "held");
        let until: chrono::DateTime<Utc> = now["expires_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(until, order.payment_due);
    }
    // The same request again is the same order; a hold cannot go into a second order.
    let again = core
        .place_order(holds.to_vec(), &alice, &keyed("o-1"))
        .await
        .unwrap();
    assert_eq!(again, order);
    let twice = core
        .place_order(holds[..1].to_vec(), &alice, &keyed("o-2"))
        .await
        .unwrap_err();
    assert_eq!(twice.code(), "invalid_request", "{twice}");
    // Read back by its customer only.
    let read = core.order(OrderId(order.order_id), &alice).await.unwrap();
    assert_eq!(read, order);
    let mallory = Caller::buyer("mallory").unwrap();
    let refused = core
        .order(OrderId(order.order_id), &mallory)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "forbidden");
    let missing = core.order(OrderId::new_random(), &alice).await.unwrap_err();
    assert!(matches!(missing, CommandError::OrderNotFound(_)));
}

#[tokio::test]
async fn an_order_refuses_someone_elses_dead_or_mixed_holds() {
    let app = spawn_app().await;
    let event = app
        .create_grid_event(1, 5, json!({"hold_seconds": 1}))
        .await;
    let other_event = app.create_grid_event(1, 5, json!({})).await;
    let core = core(&app);
    let alice = Caller::buyer("alice").unwrap();
    let bob = app.hold_ok(&event, "bob", json!([0])).await;
    let refused = core
        .place_order(vec![hold_id(&bob)], &alice, &keyed("a"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "not_hold_owner");

    let mine = app.hold_ok(&event, "alice", json!([1])).await;
    let elsewhere = app.hold_ok(&other_event, "alice", json!([1])).await;
    let mixed = core
        .place_order(
            vec![hold_id(&mine), hold_id(&elsewhere)],
            &alice,
            &keyed("b"),
        )
        .await
        .unwrap_err();
    assert_eq!(mixed.code(), "invalid_request");
    let none = core
        .place_order(vec![], &alice, &keyed("c"))
        .await
        .unwrap_err();
    assert_eq!(none.code(), "invalid_request");

    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let late = core
        .place_order(vec![hold_id(&mine)], &alice, &keyed("d"))
        .await
        .unwrap_err();
    assert_eq!(late.code(), "hold_expired");
}

const WEBHOOK_SECRET: &str = "whsec_api_test";

/// A server that takes payment notifications, with one order of alice's for seats 0 and 1.
async fn app_with_an_order() -> (TestApp, booking::orders::OrderView) {
    let mut config = crate::helpers::test_config();
    config.payments_webhook_secret = Some(std::sync::Arc::new(WEBHOOK_SECRET.to_owned().into()));
    let app = crate::helpers::spawn_app_with(config).await;
    let event = app.create_grid_event(1, 5, json!({})).await;
    let hold = app.hold_ok(&event, "alice", json!([0, 1])).await;
    let alice = Caller::buyer("alice").unwrap();
    let order = core(&app)
        .place_order(vec![hold_id(&hold)], &alice, &keyed("order"))
        .await
        .unwrap();
    (app, order)
}

fn notification(id: &str, kind: &str, order: &booking::orders::OrderView, amount: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id, "type": kind, "created": Utc::now().timestamp(),
        "data": {"object": {"id": "pi_1", "order_id": order.order_id,
                            "amount_cents": amount, "currency": order.currency}}
    }))
    .unwrap()
}

async fn deliver(app: &TestApp, body: &[u8], signature: Option<String>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/payments/webhook"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        request = request.header("seatgrid-signature", s);
    }
    request.send().await.unwrap()
}

fn signed(body: &[u8], secret: &str, at: i64) -> Option<String> {
    Some(booking::payments::sign(secret.as_bytes(), at, body))
}

#[tokio::test]
async fn a_signed_payment_notification_pays_the_order_once_however_often_it_comes() {
    let (app, order) = app_with_an_order().await;
    let body = notification(
        "evt_1",
        "payment_intent.succeeded",
        &order,
        order.amount_cents,
    );
    for _ in 0..3 {
        let now = Utc::now().timestamp();
        assert_eq!(
            deliver(&app, &body, signed(&body, WEBHOOK_SECRET, now))
                .await
                .status(),
            200
        );
    }
    let alice = Caller::buyer("alice").unwrap();
    let paid = core(&app)
        .order(OrderId(order.order_id), &alice)
        .await
        .unwrap();
    assert_eq!(paid.status, OrderStatus::Paid);
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'PaymentSucceeded'",
    )
    .bind(order.order_id.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(recorded, 1, "one provider event, one payment");
    // A failure that arrives after the success changes nothing.
    let late = notification(
        "evt_0",
        "payment_intent.payment_failed",
        &order,
        order.amount_cents,
    );
    let now = Utc::now().timestamp();
    assert_eq!(
        deliver(&app, &late, signed(&late, WEBHOOK_SECRET, now))
            .await
            .status(),
        200
    );
    let still = core(&app)
        .order(OrderId(order.order_id), &alice)
        .await
        .unwrap();
    assert_eq!(still.status, OrderStatus::Paid);
}

#[tokio::test]
async fn forged_stale_unsigned_or_wrong_notifications_are_refused() {
    use crate::helpers::assert_problem;
    use reqwest::StatusCode;
    let (app, order) = app_with_an_order().await;
    let body = notification(
        "evt_1",
        "payment_intent.succeeded",
        &order,
        order.amount_cents,
    );
    let now = Utc::now().timestamp();
    for signature in [
        signed(&body, "guessed", now),
        signed(&body, WEBHOOK_SECRET, now - 400),
        Some("t=1,v1=zz".into()),
        None,
    ] {
        let refused = deliver(&app, &body, signature).await;
        assert_problem(refused, StatusCode::UNAUTHORIZED, "invalid_signature").await;
    }
    let cheap = notification("evt_2", "payment_intent.succeeded", &order, 1);
    let refused = deliver(&app, &cheap, signed(&cheap, WEBHOOK_SECRET, now)).await;
    assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    let stranger = booking::orders::OrderView {
        order_id: uuid::Uuid::new_v4(),
        ..order.clone()
    };
    let unknown = notification("evt_3", "payment_intent.succeeded", &stranger, 5_000);
    let refused = deliver(&app, &unknown, signed(&unknown, WEBHOOK_SECRET, now)).await;
    assert_problem(refused, StatusCode::NOT_FOUND, "order_not_found").await;
    let garbage = b"{\"id\": 1}";
    let refused = deliver(&app, garbage, signed(garbage, WEBHOOK_SECRET, now)).await;
    assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    let alice = Caller::buyer("alice").unwrap();
    let untouched = core(&app)
        .order(OrderId(order.order_id), &alice)
        .await
        .unwrap();
    assert_eq!(untouched.status, OrderStatus::PendingPayment);

    // A server without a webhook secret takes no notifications at all.
    let plain = spawn_app().await;
    let refused = deliver(&plain, &body, signed(&body, WEBHOOK_SECRET, now)).await;
    assert_problem(refused, StatusCode::NOT_FOUND, "payments_not_configured").await;
}

#[tokio::test]
async fn orders_over_rest_belong_to_their_buyer() {
    use crate::helpers::assert_problem;
    use reqwest::{Method, StatusCode};
    let app = spawn_app().await;
    let event = app.create_grid_event(1, 5, json!({})).await;
    let hold = app.hold_ok(&event, "alice", json!([1, 2])).await;
    let body = json!({"hold_ids": [hold["hold_id"]]});
    let send = |who: &'static str, body: Value| {
        let request = app
            .client
            .post(app.url("/api/orders"))
            .header(
                "authorization",
                crate::helpers::bearer(who, booking::Role::Buyer),
            )
            .header("idempotency-key", format!("order-{who}"))
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    let placed = send("alice", body.clone()).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let location = placed.headers()["location"].to_str().unwrap().to_owned();
    let order: Value = placed.json().await.unwrap();
    assert_eq!(order["status"], "pending_payment");
    assert_eq!(order["amount_cents"], 5_000);
    assert_eq!(
        location,
        format!("/api/orders/{}", order["order_id"].as_str().unwrap())
    );
    // A retry with the same key is the same order.
    let again: Value = send("alice", body.clone()).await.json().await.unwrap();
    assert_eq!(again["order_id"], order["order_id"]);

    let read = app.as_customer(Method::GET, &location, "alice").await;
    assert_eq!(read.status(), StatusCode::OK);
    let refused = app.as_customer(Method::GET, &location, "mallory").await;
    assert_problem(refused, StatusCode::FORBIDDEN, "forbidden").await;
    let stolen = send("mallory", body).await;
    assert_problem(stolen, StatusCode::FORBIDDEN, "not_hold_owner").await;
    let unknown = format!("/api/orders/{}", uuid::Uuid::new_v4());
    let missing = app.as_customer(Method::GET, &unknown, "alice").await;
    assert_problem(missing, StatusCode::NOT_FOUND, "order_not_found").await;
    let malformed = app
        .as_customer(Method::GET, "/api/orders/nope", "alice")
        .await;
    assert_problem(malformed, StatusCode::NOT_FOUND, "order_not_found").await;
    let odd = send("bob", json!({"hold_ids": [], "coupon": "free"})).await;
    assert_eq!(odd.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let anonymous = app
        .client
        .post(app.url("/api/orders"))
        .json(&json!({"hold_ids": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_providers_webhooks_are_never_rate_limited() {
    use command_api::http::limits::{Rate, RateLimits};
    let mut config = crate::helpers::test_config();
    config.payments_webhook_secret = Some(std::sync::Arc::new(WEBHOOK_SECRET.to_owned().into()));
    let tight = Rate {
        per_second: 1,
        burst: 2,
    };
    config.rate_limits = Some(RateLimits {
        per_client: tight,
        per_customer: tight,
    });
    let app = crate::helpers::spawn_app_with(config).await;
    let event = app.create_grid_event(1, 5, json!({})).await;
    let hold = app.hold_ok(&event, "alice", json!([0])).await;
    let alice = Caller::buyer("alice").unwrap();
    let order = core(&app)
        .place_order(vec![hold_id(&hold)], &alice, &keyed("order"))
        .await
        .unwrap();
    // A sale's worth of outcomes from one address, far over the client's limit: all taken.
    for i in 0..8 {
        let body = notification(
            &format!("evt_{i}"),
            "payment_intent.succeeded",
            &order,
            order.amount_cents,
        );
        let now = Utc::now().timestamp();
        let status = deliver(&app, &body, signed(&body, WEBHOOK_SECRET, now))
            .await
            .status();
        assert_eq!(status, 200, "delivery {i}");
    }
    // Everything else from that address is still limited.
    let mut limited = false;
    for _ in 0..4 {
        limited |= app.get(&format!("/api/events/{event}")).await.status() == 429;
    }
    assert!(limited);
}
