//! A booking spans every seat block of its hold or none of them, also when the hold expires
//! while it is being booked, and when the server booking it stopped part way.

use std::collections::HashMap;

use booking::{EventStore, RetryPolicy};
use chrono::{Duration, Utc};
use domain::stored::event_type::BOOKING_UNDONE;
use domain::{
    CustomerAllowance, CustomerAllowanceCommand, CustomerId, EventId, HoldId, SeatBlock,
    SeatBlockCommand, SeatBlockId, SeatId,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, replay_and_check_no_double_sale, spawn_app, TestApp};

fn block(event: &str, index: u32) -> String {
    SeatBlockId {
        event_id: EventId(event.parse().unwrap()),
        index,
    }
    .aggregate_id()
}

async fn undone(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
        .bind(BOOKING_UNDONE)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_booking_that_one_block_refuses_at_the_expiry_instant_books_no_seat() {
    let app = spawn_app().await;
    // Two rows of five: seats 0-4 are block 0, seats 5-9 block 1.
    let event = app.create_grid_event(2, 5, json!({})).await;
    let hold = app.hold_ok(&event, "alice", json!([0, 5])).await;
    let id = hold["hold_id"].as_str().unwrap();
    // The race: the sweeper, deciding at an instant past the hold's expiry, records the expiry in
    // block 1 just before the booking (decided before the expiry) reaches that block.
    let store = EventStore::new(app.pool.clone(), RetryPolicy::default());
    store
        .execute::<SeatBlock>(&block(&event, 1), &HashMap::new(), || {
            SeatBlockCommand::ExpireHolds {
                now: Utc::now() + Duration::hours(1),
            }
        })
        .await
        .unwrap();

    let booked = app.comp(id).await;
    assert_problem(booked, StatusCode::CONFLICT, "hold_expired").await;

    assert_eq!(
        app.seat_map(&event).await,
        "AAAAAAAAAA",
        "no seat stays booked"
    );
    assert_eq!(app.hold_status(id).await, "expired");
    assert_eq!(undone(&app).await, 1, "block 0's booking was taken back");
    // The seats are on sale again, and alice's allowance counts nothing for the failed booking.
    app.hold_ok(&event, "bob", json!([0])).await;
    app.hold_ok(&event, "alice", json!([1, 2, 3, 4])).await;
    replay_and_check_no_double_sale(&app.pool).await;
}

/// Zoe's hold of seats 0 and 5 (blocks 0 and 1), placed, expiring and booked at the given
/// offsets from now; her booking committed the allowance and booked block 0, then its server
/// stopped: block 1 still shows the hold.
async fn half_finished_booking(app: &TestApp, event: &str, offsets: [i64; 3]) -> HoldId {
    let event_id = EventId(event.parse().unwrap());
    let zoe = CustomerId::parse("zoe").unwrap();
    let store = EventStore::new(app.pool.clone(), RetryPolicy::default());
    let meta = HashMap::new();
    let hold_id = HoldId::new_random();
    let now = Utc::now();
    let [placed, expires, decided] = offsets.map(|s| now + Duration::seconds(s));
    let allowance = CustomerAllowance::aggregate_id(event_id, &zoe);
    store
        .execute::<CustomerAllowance>(&allowance, &meta, || CustomerAllowanceCommand::Reserve {
            event_id,
            customer_id: zoe.clone(),
            hold_id,
            seats: vec![SeatId(0), SeatId(5)],
            expires_at: expires,
            limit: 2,
            now: placed,
        })
        .await
        .unwrap();
    for (index, seat) in [(0, 0), (1, 5)] {
        store
            .execute::<SeatBlock>(&block(event, index), &meta, || {
                SeatBlockCommand::HoldSeats {
                    event_id,
                    hold_id,
                    customer_id: zoe.clone(),
                    seats: vec![SeatId(seat)],
                    expires_at: expires,
                    now: placed,
                }
            })
            .await
            .unwrap();
    }
    store
        .execute::<CustomerAllowance>(&allowance, &meta, || CustomerAllowanceCommand::Commit {
            hold_id,
            decided_at: decided,
        })
        .await
        .unwrap();
    store
        .execute::<SeatBlock>(&block(event, 0), &meta, || SeatBlockCommand::BookHold {
            hold_id,
            customer_id: zoe.clone(),
            decided_at: decided,
        })
        .await
        .unwrap();
    assert_eq!(&app.seat_map(event).await[..1], "B", "half a booking");
    hold_id
}

#[tokio::test]
async fn a_booking_whose_server_stopped_between_blocks_is_taken_back_at_the_next_limit() {
    let app = spawn_app().await;
    let event = app
        .create_grid_event(2, 5, json!({"max_seats_per_customer": 2}))
        .await;
    let hold_id = half_finished_booking(&app, &event, [-20 * 60, -10 * 60, -15 * 60]).await;

    // Her next hold meets her limit, finds the unfinished booking, takes it back and goes through.
    let held = app.hold(&event, "zoe", json!([2, 3])).await;
    assert_eq!(held.status(), StatusCode::CREATED);
    assert_eq!(app.seat_map(&event).await, "AAHHAAAAAA");
    assert_eq!(app.hold_status(&hold_id.to_string()).await, "expired");
    assert_eq!(undone(&app).await, 1);
    replay_and_check_no_double_sale(&app.pool).await;
}

#[tokio::test]
async fn the_sweeper_takes_back_a_booking_whose_server_stopped_as_soon_as_the_hold_expires() {
    let app = spawn_app().await;
    let event = app.create_grid_event(2, 5, json!({})).await;
    let hold_id = half_finished_booking(&app, &event, [-30, -1, -10]).await;
    let service = booking::BookingService::new(
        EventStore::new(app.pool.clone(), RetryPolicy::default()),
        Default::default(),
    );
    assert!(booking::sweeper::sweep_once(&service).await > 0);
    assert_eq!(app.seat_map(&event).await, "AAAAAAAAAA");
    assert_eq!(app.hold_status(&hold_id.to_string()).await, "expired");
    assert_eq!(undone(&app).await, 1);
    replay_and_check_no_double_sale(&app.pool).await;
}
