//! Checkout end to end: the whole system taking payments from `seatgrid payments-mock` (its own
//! process): paid and booked, declined, refunded after a cancellation, never answered, and the
//! same over GraphQL with the order subscription.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::payments_mock::{free_port, MockProcess, SECRET};

/// A whole system taking payments from the mock (its own process, failing `failure_rate` of
/// payments), and alice's order of seats 2 and 3 placed in it.
async fn an_order_with_payments(
    failure_rate: &str,
) -> (
    Arc<booking::BookingService>,
    sqlx::PgPool,
    booking::orders::OrderView,
    MockProcess,
) {
    an_order_with(&[("PAYMENTS_MOCK_FAILURE_RATE", failure_rate)], None).await
}

/// The same with these mock settings and, if given, a payment window (seconds) and a sweeper.
async fn an_order_with(
    mock_env: &[(&str, &str)],
    payment_window_seconds: Option<u32>,
) -> (
    Arc<booking::BookingService>,
    sqlx::PgPool,
    booking::orders::OrderView,
    MockProcess,
) {
    use booking::{BookingCommands, Caller, RequestContext, Role};
    use domain::{CustomerId, LayoutSpec, NewEvent, SeatRef};
    use seatgrid::system::{System, SystemConfig};

    // The provider's port is known before either side starts: the server asks it, it answers
    // the server's webhook.
    let provider_port = free_port();
    let (_, pool) = migrations::testing::fresh_database(8).await;
    let mut command = command_api::testing::config();
    command.payments_webhook_secret = Some(Arc::new(SECRET.to_owned().into()));
    if let Some(window) = payment_window_seconds {
        command.policy.payment_window_seconds = window;
        command.sweep_interval = Some(Duration::from_millis(300));
    }
    let config = SystemConfig {
        command,
        ws: query_api::WsLimits::default(),
        redis_url: crate::helpers::redis_url(),
        redis_prefix: format!("sgtest:{}:", uuid::Uuid::new_v4().simple()),
        runner: projections::RunnerConfig {
            poll_interval: Duration::from_millis(200),
            ..Default::default()
        },
        clickhouse: None,
        ingest: analytics::IngestConfig::default(),
        payment_provider_url: Some(format!("http://127.0.0.1:{provider_port}")),
        roles: seatgrid::roles::Roles::ALL,
        leadership: seatgrid::leadership::LeaderConfig::default(),
    };
    let system = System::build(config, pool.clone(), None).await.unwrap();
    let webhook = format!("http://{}/api/payments/webhook", system.local_addr());
    let core = system.service();
    tokio::spawn(system.run_until_stopped(std::future::pending()));
    let mock = MockProcess::start_on(provider_port, &webhook, mock_env);

    let organizer = Caller::new(CustomerId::parse("olga").unwrap(), Role::Organizer);
    let draft = NewEvent {
        name: "Paid night".into(),
        venue: None,
        starts_at: None,
        currency: None,
        layout: LayoutSpec::grid(1, 10, 3_000).unwrap(),
        hold_seconds: None,
        max_seats_per_customer: None,
        organizer: None,
    };
    let ctx = RequestContext::default();
    let event = core.create_event(draft, &organizer, &ctx).await.unwrap();
    let alice = Caller::buyer("alice").unwrap();
    let seats = vec![SeatRef::Id(2), SeatRef::Id(3)];
    let hold = core
        .hold_seats(domain::EventId(event.id), &alice, seats.into(), &ctx)
        .await
        .unwrap();
    let order = core
        .place_order(vec![domain::HoldId(hold.hold_id)], &alice, &ctx)
        .await
        .unwrap();
    assert_eq!(order.amount_cents, 6_000);
    (core, pool, order, mock)
}

/// Waits up to 10 s for the order to reach `wanted`; its last status either way.
async fn order_reaches(
    core: &booking::BookingService,
    order: &booking::orders::OrderView,
    wanted: domain::OrderStatus,
) -> domain::OrderStatus {
    use booking::BookingCommands;
    let alice = booking::Caller::buyer("alice").unwrap();
    let mut status = order.status;
    for _ in 0..100 {
        status = core
            .order(domain::OrderId(order.order_id), &alice)
            .await
            .unwrap()
            .status;
        if status == wanted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    status
}

/// The order's event's strong seat map once it reads `wanted`, or as it is after 5 s.
async fn seats_within_5_s(
    core: &booking::BookingService,
    order: &booking::orders::OrderView,
    wanted: &str,
) -> String {
    use booking::BookingCommands;
    let mut seats = String::new();
    for _ in 0..50 {
        seats = core
            .seat_map(domain::EventId(order.event_id))
            .await
            .unwrap()
            .seats;
        if seats == wanted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placed_order_is_paid_through_the_provider_and_its_seats_booked() {
    use booking::BookingCommands;
    let (core, pool, order, _mock) = an_order_with_payments("0").await;
    // The relay asks the mock, the mock answers by a signed webhook, the order is paid, the
    // order process books its seats and confirms it.
    let status = order_reaches(&core, &order, domain::OrderStatus::Confirmed).await;
    assert_eq!(status, domain::OrderStatus::Confirmed);
    let map = core
        .seat_map(domain::EventId(order.event_id))
        .await
        .unwrap();
    assert_eq!(map.seats, "AABBAAAAAA");
    let paid: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'PaymentSucceeded'",
    )
    .bind(order.order_id.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(paid, 1, "asked once, paid once");
    // The order knows the provider's payment and where it is paid; that page answers.
    let alice = booking::Caller::buyer("alice").unwrap();
    let view = core
        .order(domain::OrderId(order.order_id), &alice)
        .await
        .unwrap();
    let intent = view.payment_intent.expect("the provider's payment id");
    let url = view.payment_url.expect("where the buyer pays");
    assert!(
        url.ends_with(&format!("/v1/payment_intents/{intent}")),
        "{url}"
    );
    let page: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(page["id"], intent.as_str());
    assert_eq!(page["status"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_payment_gives_the_seats_back_at_once() {
    let (core, _pool, order, _mock) = an_order_with_payments("1").await;
    let status = order_reaches(&core, &order, domain::OrderStatus::PaymentFailed).await;
    assert_eq!(status, domain::OrderStatus::PaymentFailed);
    let seats = seats_within_5_s(&core, &order, "AAAAAAAAAA").await;
    assert_eq!(seats, "AAAAAAAAAA", "released, not left to expire");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_order_cancelled_is_refunded_by_the_provider_and_its_seats_go_back_on_sale() {
    use booking::BookingCommands;
    let (core, _pool, order, _mock) = an_order_with_payments("0").await;
    let confirmed = order_reaches(&core, &order, domain::OrderStatus::Confirmed).await;
    assert_eq!(confirmed, domain::OrderStatus::Confirmed);
    let alice = booking::Caller::buyer("alice").unwrap();
    let ctx = booking::RequestContext::default();
    let cancelled = core
        .cancel_order(domain::OrderId(order.order_id), &alice, &ctx)
        .await
        .unwrap();
    assert_eq!(cancelled.status, domain::OrderStatus::RefundPending);
    // The relay asks the provider for the refund, its webhook says it is done, the order
    // process takes the booking back.
    let refunded = order_reaches(&core, &order, domain::OrderStatus::Refunded).await;
    assert_eq!(refunded, domain::OrderStatus::Refunded);
    let seats = seats_within_5_s(&core, &order, "AAAAAAAAAA").await;
    assert_eq!(seats, "AAAAAAAAAA", "back on sale once refunded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_orders_over_graphql_and_the_order_subscription_pushes_every_status() {
    use crate::helpers::{error_code, spawn_with_payments};
    let port = free_port();
    let app = spawn_with_payments(format!("http://127.0.0.1:{port}"), SECRET).await;
    // The provider starts only once the buyer is subscribed (until then the relay retries), so
    // the subscription sees the payment page arrive, then the money.
    let start_mock = || {
        MockProcess::start_on(
            port,
            &format!("{}/api/payments/webhook", app.address),
            // The money a second after the page, so the two are separate batches of the log.
            &[
                ("PAYMENTS_MOCK_FAILURE_RATE", "0"),
                ("PAYMENTS_MOCK_DELAY_MS", "1000"),
            ],
        )
    };
    let event = app.create_grid_event(1, 6, 600).await;
    let hold = app.hold(&event, "nia", &[1, 2]).await["data"]["holdSeats"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let nia = app.as_buyer("nia");
    // Buyers cannot book without paying.
    let free = nia
        .gql(
            "mutation($h: UUID!) { bookHold(holdId: $h) { status } }",
            json!({"h": hold}),
        )
        .await;
    assert_eq!(error_code(&free), "forbidden");
    let placed = nia
        .data(
            "mutation($h: [UUID!]!) { placeOrder(holdIds: $h, idempotencyKey: \"k1\") {
               id status amountCents currency paymentKey seats { row seat priceCents } } }",
            json!({"h": [hold]}),
        )
        .await;
    let order = placed["placeOrder"]["id"].as_str().unwrap().to_owned();
    assert_eq!(placed["placeOrder"]["status"], "PENDING_PAYMENT");
    assert_eq!(placed["placeOrder"]["paymentKey"], order.as_str());
    assert_eq!(placed["placeOrder"]["seats"].as_array().unwrap().len(), 2);
    // The same key again is the same order.
    let again = nia
        .data(
            "mutation($h: [UUID!]!) { placeOrder(holdIds: $h, idempotencyKey: \"k1\") { id } }",
            json!({"h": [hold]}),
        )
        .await;
    assert_eq!(again["placeOrder"]["id"], order.as_str());
    let mut sub = nia
        .subscribe(
            "subscription($o: UUID!) { order(id: $o) { status paymentUrl } }",
            json!({"o": order}),
        )
        .await;
    let first = sub.next_data().await;
    assert_eq!(first["order"]["status"], "PENDING_PAYMENT");
    assert!(first["order"]["paymentUrl"].is_null(), "{first}");
    let _mock = start_mock();
    let mut seen: Vec<Value> = vec![json!("PENDING_PAYMENT")];
    let mut pages = vec![json!(null)];
    loop {
        let message = sub.next_message().await;
        if message["type"] == "complete" {
            break;
        }
        let pushed = &message["payload"]["data"]["order"];
        if seen.last() != Some(&pushed["status"]) {
            seen.push(pushed["status"].clone());
        }
        pages.push(pushed["paymentUrl"].clone());
    }
    // Each status in order, then the end of the stream; the payment page is pushed as it arrives
    // (a push of its own, still PENDING_PAYMENT), before the money.
    assert_eq!(
        seen,
        [json!("PENDING_PAYMENT"), json!("PAID"), json!("CONFIRMED")]
    );
    assert_eq!(pages.len(), 4, "{pages:?}");
    assert!(pages[1..].iter().all(Value::is_string), "{pages:?}");
    // Someone else may neither read nor cancel it; nia sees it among her orders.
    let eve = app.as_buyer("eve");
    let peek = eve
        .gql(
            "query($o: UUID!) { order(id: $o) { id } }",
            json!({"o": order}),
        )
        .await;
    assert_eq!(error_code(&peek), "forbidden");
    let cancel = "mutation($o: UUID!) { cancelOrder(orderId: $o) { status refundReason } }";
    let stolen = eve.gql(cancel, json!({"o": order})).await;
    assert_eq!(error_code(&stolen), "forbidden");
    let mine = nia
        .data("{ customer { orders { id status } } }", json!({}))
        .await;
    assert_eq!(mine["customer"]["orders"][0]["id"], order.as_str());
    assert_eq!(mine["customer"]["orders"][0]["status"], "CONFIRMED");
    let cancelled = nia.data(cancel, json!({"o": order})).await;
    assert_eq!(cancelled["cancelOrder"]["status"], "REFUND_PENDING");
    assert_eq!(
        cancelled["cancelOrder"]["refundReason"],
        "CUSTOMER_CANCELLED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_never_answered_expires_the_order_and_frees_its_seats() {
    use booking::BookingCommands;
    // The provider loses every payment; the order's window is 2 s.
    let (core, pool, order, _mock) =
        an_order_with(&[("PAYMENTS_MOCK_SILENCE_RATE", "1")], Some(2)).await;
    let window = order.payment_due - order_placed_at(&pool, &order).await;
    assert!(window <= chrono::Duration::seconds(2), "{window}");
    let status = order_reaches(&core, &order, domain::OrderStatus::Expired).await;
    assert_eq!(status, domain::OrderStatus::Expired);
    // The sweeper records the expiry and the order process gives the seats back.
    let mut recorded = 0i64;
    let mut seats = String::new();
    for _ in 0..50 {
        recorded = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'OrderExpired'",
        )
        .bind(order.order_id.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
        seats = core
            .seat_map(domain::EventId(order.event_id))
            .await
            .unwrap()
            .seats;
        if recorded == 1 && seats == "AAAAAAAAAA" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((recorded, seats.as_str()), (1, "AAAAAAAAAA"));
}

/// When `order` was placed, as stored.
async fn order_placed_at(
    pool: &sqlx::PgPool,
    order: &booking::orders::OrderView,
) -> chrono::DateTime<chrono::Utc> {
    let at: String = sqlx::query_scalar(
        "SELECT payload -> 'OrderPlaced' ->> 'at' FROM events
          WHERE aggregate_id = $1 AND event_type = 'OrderPlaced'",
    )
    .bind(order.order_id.to_string())
    .fetch_one(pool)
    .await
    .unwrap();
    at.parse().unwrap()
}
