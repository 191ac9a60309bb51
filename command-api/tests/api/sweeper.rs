use std::time::Duration;

use command_api::sweeper;
use serde_json::{json, Value};

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_sweeper_records_expiries_nobody_touched_once() {
    let app = spawn_app().await;
    let event = app
        .create_grid_event(3, 5, json!({"hold_seconds": 1}))
        .await;
    let lapsed = app.hold_ok(&event, "alice", json!([0, 5])).await;
    let store = command_api::service::BookingService::new(
        command_api::store::EventStore::new(app.pool.clone(), Default::default()),
        Default::default(),
    );
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
        "SELECT payload FROM events WHERE event_type = 'HoldExpired' ORDER BY aggregate_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(expired.len(), 2);
    for payload in &expired {
        assert_eq!(payload["HoldExpired"]["hold_id"], lapsed["hold_id"]);
    }
    assert_eq!(
        app.hold_status(live["hold_id"].as_str().unwrap()).await,
        "held"
    );
}
