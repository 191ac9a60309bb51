//! The order process's steps, through the core as the process calls them: a payment's outcome is
//! recorded (as the webhook does), then `settle_order` runs (as the order process does after
//! every such event), and the seats must end booked for a payer or free, never both.

use std::time::Duration;

use booking::payments::{WebhookData, WebhookEvent, WebhookObject, WebhookType};
use booking::{BookingCommands, BookingService, Caller, EventStore, RequestContext};
use domain::{EventPolicy, HoldId, OrderId, OrderStatus, RefundReason};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, TestApp};

/// The core with a short longest hold, so a test can watch an order's holds lapse.
fn core_with_cap(app: &TestApp, max_hold_seconds: u32) -> BookingService {
    BookingService::new(
        EventStore::new(app.pool.clone(), Default::default()),
        EventPolicy {
            min_hold_seconds: 1,
            max_hold_seconds,
            ..EventPolicy::default()
        },
    )
}

fn core(app: &TestApp) -> BookingService {
    core_with_cap(app, 3600)
}

fn ctx() -> RequestContext {
    RequestContext {
        correlation_id: "settle-test".into(),
        id_seed: None,
    }
}

fn hold_id(hold: &Value) -> HoldId {
    HoldId(hold["hold_id"].as_str().unwrap().parse().unwrap())
}

fn news(id: &str, kind: WebhookType, order: &booking::orders::OrderView) -> WebhookEvent {
    WebhookEvent {
        id: id.into(),
        kind,
        created: chrono::Utc::now().timestamp(),
        data: WebhookData {
            object: WebhookObject {
                id: format!("pi_{}", order.order_id.simple()),
                order_id: order.order_id,
                amount_cents: order.amount_cents,
                currency: order.currency.clone(),
                failure_reason: None,
            },
        },
    }
}

async fn status(core: &BookingService, order: &booking::orders::OrderView) -> OrderStatus {
    let alice = Caller::buyer("alice").unwrap();
    core.order(OrderId(order.order_id), &alice)
        .await
        .unwrap()
        .status
}

/// A sale in progress: a 1 x 5 event, alice's hold of `seats` and her order of it, and the core
/// with a longest hold of `cap` seconds (the order's payment window ends within it).
struct Sale {
    app: TestApp,
    event: String,
    hold: Value,
    core: BookingService,
    alice: Caller,
    order: booking::orders::OrderView,
}

async fn sale(seats: Value, hold_seconds: Option<u32>, cap: u32) -> Sale {
    let app = spawn_app().await;
    let extra = match hold_seconds {
        Some(s) => json!({ "hold_seconds": s }),
        None => json!({}),
    };
    let event = app.create_grid_event(1, 5, extra).await;
    let hold = app.hold_ok(&event, "alice", seats).await;
    let core = core_with_cap(&app, cap);
    let alice = Caller::buyer("alice").unwrap();
    let order = core
        .place_order(vec![hold_id(&hold)], &alice, &ctx())
        .await
        .unwrap();
    Sale {
        app,
        event,
        hold,
        core,
        alice,
        order,
    }
}

/// Records `kind` and runs the order process's step, as the webhook and the process do.
async fn pay(
    core: &BookingService,
    id: &str,
    kind: WebhookType,
    order: &booking::orders::OrderView,
) {
    core.record_payment(news(id, kind, order), &ctx())
        .await
        .unwrap();
    core.settle_order(OrderId(order.order_id)).await.unwrap();
}

#[tokio::test]
async fn a_paid_order_over_several_blocks_ends_confirmed_with_every_seat_booked() {
    let app = spawn_app().await;
    let event = app.create_grid_event(2, 5, json!({})).await;
    let a = app.hold_ok(&event, "alice", json!([0])).await;
    let b = app.hold_ok(&event, "alice", json!([5, 6])).await;
    let core = core(&app);
    let alice = Caller::buyer("alice").unwrap();
    let order = core
        .place_order(vec![hold_id(&a), hold_id(&b)], &alice, &ctx())
        .await
        .unwrap();
    pay(&core, "evt_ok", WebhookType::PaymentSucceeded, &order).await;
    // The process may run again after a crash: nothing changes.
    core.settle_order(OrderId(order.order_id)).await.unwrap();
    let confirmed = core.order(OrderId(order.order_id), &alice).await.unwrap();
    assert_eq!(confirmed.status, OrderStatus::Confirmed);
    assert_eq!(
        confirmed.payment_intent.as_deref(),
        Some(format!("pi_{}", order.order_id.simple()).as_str())
    );
    let map = app.seat_map(&event).await;
    assert_eq!((&map[0..1], &map[5..7]), ("B", "BB"), "{map}");
    for hold in [&a, &b] {
        assert_eq!(
            app.hold_status(hold["hold_id"].as_str().unwrap()).await,
            "booked"
        );
    }
}

#[tokio::test]
async fn a_failed_payment_releases_the_seats_at_once() {
    let Sale {
        app,
        event,
        hold,
        core,
        order,
        ..
    } = sale(json!([2, 3]), None, 3600).await;
    pay(&core, "evt_no", WebhookType::PaymentFailed, &order).await;
    assert_eq!(status(&core, &order).await, OrderStatus::PaymentFailed);
    assert_eq!(&app.seat_map(&event).await[2..4], "AA");
    assert_eq!(
        app.hold_status(hold["hold_id"].as_str().unwrap()).await,
        "released"
    );
}

#[tokio::test]
async fn cancel_before_payment_frees_the_seats_and_money_arriving_later_is_refunded() {
    let Sale {
        app,
        event,
        core,
        alice,
        order,
        ..
    } = sale(json!([1]), None, 3600).await;
    // Only its buyer cancels it.
    let mallory = Caller::buyer("mallory").unwrap();
    let refused = core
        .cancel_order(OrderId(order.order_id), &mallory, &ctx())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "forbidden");
    let cancelled = core
        .cancel_order(OrderId(order.order_id), &alice, &ctx())
        .await
        .unwrap();
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    core.settle_order(OrderId(order.order_id)).await.unwrap();
    assert_eq!(&app.seat_map(&event).await[1..2], "A");
    // Cancelling again answers the same.
    let again = core
        .cancel_order(OrderId(order.order_id), &alice, &ctx())
        .await
        .unwrap();
    assert_eq!(again.status, OrderStatus::Cancelled);
    // The provider charged anyway: the money goes back, the seats stay free.
    pay(&core, "evt_late", WebhookType::PaymentSucceeded, &order).await;
    let refunding = core.order(OrderId(order.order_id), &alice).await.unwrap();
    assert_eq!(refunding.status, OrderStatus::RefundPending);
    assert_eq!(
        refunding.refund_reason,
        Some(RefundReason::CancelledBeforePayment)
    );
    assert_eq!(&app.seat_map(&event).await[1..2], "A");
}

#[tokio::test]
async fn cancel_after_confirmation_refunds_and_then_puts_the_seats_back_on_sale() {
    let Sale {
        app,
        event,
        core,
        alice,
        order,
        ..
    } = sale(json!([3, 4]), None, 3600).await;
    pay(&core, "evt_ok", WebhookType::PaymentSucceeded, &order).await;
    assert_eq!(status(&core, &order).await, OrderStatus::Confirmed);
    let cancelled = core
        .cancel_order(OrderId(order.order_id), &alice, &ctx())
        .await
        .unwrap();
    assert_eq!(cancelled.status, OrderStatus::RefundPending);
    assert_eq!(
        cancelled.refund_reason,
        Some(RefundReason::CustomerCancelled)
    );
    core.settle_order(OrderId(order.order_id)).await.unwrap();
    // Until the money is back the seats stay the buyer's.
    assert_eq!(&app.seat_map(&event).await[3..5], "BB");
    pay(&core, "evt_refund", WebhookType::RefundSucceeded, &order).await;
    assert_eq!(status(&core, &order).await, OrderStatus::Refunded);
    assert_eq!(&app.seat_map(&event).await[3..5], "AA");
    // Someone else can buy them now.
    app.hold_ok(&event, "bob", json!([3, 4])).await;
}

#[tokio::test]
async fn a_paid_order_cannot_be_cancelled_while_its_seats_are_being_booked() {
    let Sale {
        app, core, order, ..
    } = sale(json!([0]), None, 3600).await;
    core.record_payment(
        news("evt_ok", WebhookType::PaymentSucceeded, &order),
        &ctx(),
    )
    .await
    .unwrap();
    let refused = app
        .as_customer(
            reqwest::Method::POST,
            &format!("/api/orders/{}/cancel", order.order_id),
            "alice",
        )
        .await;
    assert_problem(refused, StatusCode::CONFLICT, "order_not_cancellable").await;
}

#[tokio::test]
async fn money_after_the_holds_lapsed_rebooks_seats_still_free_for_the_payer() {
    // The longest hold is 2 s: the order's payment window ends then.
    let Sale {
        app,
        event,
        hold,
        core,
        alice,
        order,
    } = sale(json!([0, 1]), Some(1), 2).await;
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    assert_eq!(status(&core, &order).await, OrderStatus::Expired);
    // The sweeper records the hold's expiry first, then the money arrives.
    booking::sweeper::sweep_once(&core).await;
    assert_eq!(
        app.hold_status(hold["hold_id"].as_str().unwrap()).await,
        "expired"
    );
    pay(&core, "evt_late", WebhookType::PaymentSucceeded, &order).await;
    let confirmed = core.order(OrderId(order.order_id), &alice).await.unwrap();
    assert_eq!(confirmed.status, OrderStatus::Confirmed);
    assert_ne!(
        confirmed.holds, order.holds,
        "a new hold replaced the lapsed one"
    );
    assert_eq!(&app.seat_map(&event).await[0..2], "BB");
    let new_hold = confirmed.holds[0].to_string();
    assert_eq!(app.hold_status(&new_hold).await, "booked");
    // The process running again (a redelivery) changes nothing.
    core.settle_order(OrderId(order.order_id)).await.unwrap();
    assert_eq!(
        core.order(OrderId(order.order_id), &alice).await.unwrap(),
        confirmed
    );
}

#[tokio::test]
async fn money_after_the_seats_went_to_someone_else_is_refunded_never_oversold() {
    let Sale {
        app,
        event,
        core,
        alice,
        order,
        ..
    } = sale(json!([0, 1]), Some(1), 2).await;
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    // Bob takes one of the seats first.
    let bob = app.hold_ok(&event, "bob", json!([1])).await;
    pay(&core, "evt_late", WebhookType::PaymentSucceeded, &order).await;
    let refunding = core.order(OrderId(order.order_id), &alice).await.unwrap();
    assert_eq!(refunding.status, OrderStatus::RefundPending);
    assert_eq!(refunding.refund_reason, Some(RefundReason::SeatsLost));
    let map = app.seat_map(&event).await;
    assert_eq!(&map[0..2], "AH", "alice has nothing, bob keeps his: {map}");
    assert_eq!(
        app.hold_status(bob["hold_id"].as_str().unwrap()).await,
        "held"
    );
    pay(&core, "evt_refund", WebhookType::RefundSucceeded, &order).await;
    assert_eq!(status(&core, &order).await, OrderStatus::Refunded);
    assert_eq!(&app.seat_map(&event).await[0..2], "AH");
}

#[tokio::test]
async fn the_sweeper_records_the_expiry_of_an_order_nobody_paid() {
    let Sale {
        app,
        event,
        core,
        order,
        ..
    } = sale(json!([2]), Some(1), 1).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    core.expire_orders(&[OrderId(order.order_id)])
        .await
        .unwrap();
    core.expire_orders(&[OrderId(order.order_id)])
        .await
        .unwrap();
    let expired: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'OrderExpired'",
    )
    .bind(order.order_id.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(expired, 1);
    core.settle_order(OrderId(order.order_id)).await.unwrap();
    assert_eq!(&app.seat_map(&event).await[2..3], "A");
}

#[tokio::test]
async fn money_in_time_but_settled_after_the_holds_lapsed_still_seats_the_payer() {
    let Sale {
        app,
        event,
        core,
        alice,
        order,
        ..
    } = sale(json!([3]), Some(1), 2).await;
    // Paid within the window; the order process is late and the sweeper expires the hold first.
    core.record_payment(
        news("evt_ok", WebhookType::PaymentSucceeded, &order),
        &ctx(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    booking::sweeper::sweep_once(&core).await;
    core.settle_order(OrderId(order.order_id)).await.unwrap();
    let confirmed = core.order(OrderId(order.order_id), &alice).await.unwrap();
    assert_eq!(confirmed.status, OrderStatus::Confirmed);
    assert_eq!(&app.seat_map(&event).await[3..4], "B");
}

#[tokio::test]
async fn refunds_the_provider_has_not_confirmed_in_time_are_counted_for_operators() {
    let app = spawn_app().await;
    let row = |status: &'static str, minutes: i32| {
        sqlx::query(
            "INSERT INTO rm_orders (order_id, event_id, customer_id, status, holds, seats,
                                    seat_count, amount_cents, currency, payment_due, placed_at,
                                    updated_at, version)
             VALUES (gen_random_uuid(), gen_random_uuid(), 'alice', $1, '{}', '{}', 1, 100, 'EUR',
                     now(), now(), now() - make_interval(mins => $2), 1)",
        )
        .bind(status)
        .bind(minutes)
        .execute(&app.pool)
    };
    row("refund_pending", 11).await.unwrap();
    row("refund_pending", 2).await.unwrap();
    row("refunded", 30).await.unwrap();
    assert_eq!(
        booking::sweeper::overdue_refunds(&app.pool).await.unwrap(),
        1
    );
}
