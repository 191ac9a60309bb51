//! A client that goes away mid-command does not leave the command half done.

use std::time::Duration;

use booking::Role;
use domain::stored::aggregate_type::SEAT_BLOCK;
use domain::{EventId, SeatBlockId};
use serde_json::json;

use crate::helpers::{bearer, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_across_two_blocks_completes_after_its_client_disconnects() {
    let app = spawn_app().await;
    // Two rows of two seats: seats 0-1 are block 0, seats 2-3 block 1.
    let event = app.create_grid_event(2, 2, json!({})).await;
    let block_1 = SeatBlockId {
        event_id: EventId(event.parse().unwrap()),
        index: 1,
    }
    .aggregate_id();

    // Another writer is about to append to block 1 and has not committed yet: the hold's append to
    // block 1 waits for it, after block 0 is already held.
    let mut other = app.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         VALUES ($1, $2, 1, 'Blocker', '1', '{}', '{}')",
    )
    .bind(SEAT_BLOCK)
    .bind(&block_1)
    .execute(&mut *other)
    .await
    .unwrap();

    // The client gives up while the hold waits on block 1, and hangs up.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let sent = impatient
        .post(app.url(&format!("/api/events/{event}/holds")))
        .header("authorization", bearer("dora", Role::Buyer))
        .json(&json!({"seats": [1, 2]}))
        .send()
        .await;
    assert!(sent.is_err(), "the client timed out");
    tokio::time::sleep(Duration::from_millis(500)).await;
    other.rollback().await.unwrap();

    // The command went on without its client: the hold is whole (both seats), not half placed.
    let mut seats = String::new();
    for _ in 0..100 {
        seats = app.seat_map(&event).await;
        if seats == "AHHA" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seats, "AHHA", "both seats held, none stuck alone");
}
