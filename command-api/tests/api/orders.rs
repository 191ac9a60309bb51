//! Placing an order through the application core (REST and GraphQL come with payments): holds
//! taken into one order, their expiry moved to the payment window, the seats priced.

use booking::{BookingService, Caller, CommandError, EventStore, RequestContext};
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
        .place_order(&holds, &alice, &keyed("o-1"))
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
        .place_order(&holds, &alice, &keyed("o-1"))
        .await
        .unwrap();
    assert_eq!(again, order);
    let twice = core
        .place_order(&holds[..1], &alice, &keyed("o-2"))
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
        .place_order(&[hold_id(&bob)], &alice, &keyed("a"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "not_hold_owner");

    let mine = app.hold_ok(&event, "alice", json!([1])).await;
    let elsewhere = app.hold_ok(&other_event, "alice", json!([1])).await;
    let mixed = core
        .place_order(&[hold_id(&mine), hold_id(&elsewhere)], &alice, &keyed("b"))
        .await
        .unwrap_err();
    assert_eq!(mixed.code(), "invalid_request");
    let none = core
        .place_order(&[], &alice, &keyed("c"))
        .await
        .unwrap_err();
    assert_eq!(none.code(), "invalid_request");

    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let late = core
        .place_order(&[hold_id(&mine)], &alice, &keyed("d"))
        .await
        .unwrap_err();
    assert_eq!(late.code(), "hold_expired");
}
