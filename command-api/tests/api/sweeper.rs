use std::time::Duration;

use booking::sweeper;
use booking::BookingService;
use domain::stored::event_type::{HOLD_EXPIRED, SEAT_HELD};
use serde_json::{json, Value};

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_sweeper_records_expiries_nobody_touched_once() {
    let app = spawn_app().await;
    let event = app
        .create_grid_event(3, 5, json!({"hold_seconds": 1}))
        .await;
    let lapsed = app.hold_ok(&event, "alice", json!([0, 5])).await;
    let store = service_on(&app);
    assert_eq!(sweeper::sweep_once(&store).await, 0, "nothing is due yet");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let other_event = app.create_grid_event(1, 5, json!({})).await;
    let live = app.hold_ok(&other_event, "bob", json!([1])).await;

    assert_eq!(
        sweeper::sweep_once(&store).await,
        2,
        "both blocks of alice's hold"
    );
    assert_eq!(sweeper::sweep_once(&store).await, 0, "nothing left to do");
    let expired: Vec<Value> = sqlx::query_scalar(
        "SELECT payload FROM events WHERE event_type = $1 ORDER BY aggregate_id",
    )
    .bind(HOLD_EXPIRED)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(expired.len(), 2);
    for payload in &expired {
        assert_eq!(payload[HOLD_EXPIRED]["hold_id"], lapsed["hold_id"]);
    }
    assert_eq!(
        app.hold_status(live["hold_id"].as_str().unwrap()).await,
        "held"
    );
}

/// The sweeper's watermark, and the place in the global order of a hold's (first) SeatHeld event.
async fn watermark(pool: &sqlx::PgPool) -> (i64, i64) {
    sqlx::query_as("SELECT transaction_id, position FROM hold_sweeper_watermark")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn held_at(pool: &sqlx::PgPool, hold: &Value) -> (i64, i64) {
    sqlx::query_as(
        "SELECT transaction_id::text::bigint, position FROM events
          WHERE event_type = $2 AND hold_id = $1::uuid ORDER BY position LIMIT 1",
    )
    .bind(hold["hold_id"].as_str().unwrap())
    .bind(SEAT_HELD)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Sweeps until the watermark reaches `expected`: transactions of tests running beside this one
/// (on other databases of the same server) can hold the visibility horizon back for a moment.
async fn sweep_until_watermark(store: &BookingService, expected: (i64, i64)) {
    let pool = store.store().pool();
    for _ in 0..50 {
        sweeper::sweep_once(store).await;
        if watermark(pool).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        watermark(pool).await,
        expected,
        "the watermark did not get there"
    );
}

fn service_on(app: &crate::helpers::TestApp) -> BookingService {
    BookingService::new(
        booking::EventStore::new(app.pool.clone(), Default::default()),
        Default::default(),
    )
}

#[tokio::test]
async fn the_watermark_waits_for_the_oldest_open_hold_and_hides_nothing_after_it() {
    let app = spawn_app().await;
    let store = service_on(&app);
    let long_event = app
        .create_grid_event(1, 5, json!({"hold_seconds": 600}))
        .await;
    let short_event = app
        .create_grid_event(1, 5, json!({"hold_seconds": 1}))
        .await;
    let long = app.hold_ok(&long_event, "carol", json!([0])).await;
    let short = app.hold_ok(&short_event, "alice", json!([2])).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let (tx, position) = held_at(&app.pool, &long).await;
    assert_eq!(
        sweeper::sweep_once(&store).await,
        1,
        "the lapsed hold after the open one is still found"
    );
    assert_eq!(
        app.hold_status(short["hold_id"].as_str().unwrap()).await,
        "expired"
    );
    sweep_until_watermark(&store, (tx, position - 1)).await;

    let released = app
        .as_customer(
            reqwest::Method::DELETE,
            &format!("/api/holds/{}", long["hold_id"].as_str().unwrap()),
            "carol",
        )
        .await;
    assert_eq!(released.status(), reqwest::StatusCode::NO_CONTENT);
    sweep_until_watermark(&store, held_at(&app.pool, &short).await).await;
    assert_eq!(sweeper::sweep_once(&store).await, 0, "nothing left to do");
}

#[tokio::test]
async fn the_watermark_never_passes_a_hold_an_older_running_transaction_could_precede() {
    let app = spawn_app().await;
    let store = service_on(&app);
    let event = app
        .create_grid_event(1, 5, json!({"hold_seconds": 1}))
        .await;
    // A transaction that started before the hold and is still running: anything it inserts would
    // get a lower position, so no reader may treat the hold's place as settled yet.
    let mut running = migrations::transaction::begin(&app.pool).await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *running)
        .await
        .unwrap();
    let hold = app.hold_ok(&event, "alice", json!([1])).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    assert_eq!(
        sweeper::sweep_once(&store).await,
        1,
        "expiring does not wait"
    );
    assert_eq!(sweeper::sweep_once(&store).await, 0);
    assert_eq!(watermark(&app.pool).await, (0, 0), "but the watermark does");

    running.commit().await.unwrap();
    sweep_until_watermark(&store, held_at(&app.pool, &hold).await).await;
}

#[tokio::test]
async fn an_extended_hold_is_swept_at_its_new_expiry_not_its_first() {
    use domain::{
        CustomerAllowance, CustomerAllowanceCommand, CustomerId, EventId, HoldId, SeatBlock,
        SeatBlockCommand, SeatBlockId,
    };
    let app = spawn_app().await;
    let event = app
        .create_grid_event(1, 5, json!({"hold_seconds": 1}))
        .await;
    let held = app.hold_ok(&event, "alice", json!([2])).await;
    let hold_id = HoldId(held["hold_id"].as_str().unwrap().parse().unwrap());
    let (event_id, alice) = (
        EventId(event.parse().unwrap()),
        CustomerId::parse("alice").unwrap(),
    );
    // An order for the hold moves its expiry (in the block and the allowance) 3 s ahead.
    let store = booking::EventStore::new(app.pool.clone(), Default::default());
    let until = chrono::Utc::now() + chrono::Duration::seconds(3);
    let meta = std::collections::HashMap::new();
    let block = SeatBlockId { event_id, index: 0 }.aggregate_id();
    store
        .execute::<SeatBlock>(&block, &meta, || SeatBlockCommand::ExtendHold {
            order_id: domain::OrderId::new_random(),
            hold_id,
            customer_id: alice.clone(),
            until,
            now: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let allowance = CustomerAllowance::aggregate_id(event_id, &alice);
    store
        .execute::<CustomerAllowance>(&allowance, &meta, || CustomerAllowanceCommand::Extend {
            hold_id,
            until,
            now: chrono::Utc::now(),
        })
        .await
        .unwrap();

    let service = service_on(&app);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(
        sweeper::sweep_once(&service).await,
        0,
        "not due at its first expiry"
    );
    let id = hold_id.to_string();
    assert_eq!(app.hold_status(&id).await, "held");
    tokio::time::sleep((until - chrono::Utc::now()).to_std().unwrap_or_default()).await;
    assert_eq!(
        sweeper::sweep_once(&service).await,
        1,
        "due at its new expiry"
    );
    assert_eq!(app.hold_status(&id).await, "expired");
    assert_eq!(app.seat_map(&event).await, "AAAAA");
}
