use domain::stored::aggregate_type::SEAT_BLOCK;
use domain::stored::event_type::{ALLOWANCE_RESERVED, HOLD_EXPIRED, SEAT_HELD};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use booking::Role;

use crate::helpers::{assert_problem, bearer, seat_ids, spawn_app};

#[tokio::test]
async fn holding_free_seats_returns_201_with_expiry_and_the_seats() {
    let app = spawn_app().await;
    let event = app.create_grid_event(5, 10, json!({})).await;
    let before = chrono::Utc::now();
    let response = app
        .hold(&event, "alice", json!([3, {"row": 2, "seat": "1"}]))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let hold: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/holds/{}", hold["hold_id"].as_str().unwrap())
    );
    assert_eq!(hold["status"], "held");
    assert_eq!(seat_ids(&hold), [3, 10]);
    assert_eq!(hold["seats"][1]["row"], "2");
    assert_eq!(hold["seats"][1]["seat"], 1);
    assert_eq!(hold["total_cents"], 5000);
    let expires: chrono::DateTime<chrono::Utc> =
        hold["expires_at"].as_str().unwrap().parse().unwrap();
    let ttl = (expires - before).num_seconds();
    assert!(
        (599..=601).contains(&ttl),
        "default hold is 10 minutes, got {ttl} s"
    );

    let fetched: Value = app.get(&location).await.json().await.unwrap();
    assert_eq!(fetched["status"], "held");
    assert_eq!(fetched["customer_id"], "alice");
    assert_eq!(&app.seat_map(&event).await[..11], "AAAHAAAAAAH");
    // The allowance's reservation was committed with the first block's seats, in one
    // transaction (booking::linked); the second block's seats followed.
    let writers: Vec<(String, String)> = sqlx::query_as(
        "SELECT event_type, xmin::text FROM events WHERE hold_id = $1 ORDER BY event_type, aggregate_id",
    )
    .bind(uuid::Uuid::parse_str(hold["hold_id"].as_str().unwrap()).unwrap())
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let kinds: Vec<&str> = writers.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(kinds, [ALLOWANCE_RESERVED, SEAT_HELD, SEAT_HELD]);
    assert_eq!(writers[0].1, writers[1].1, "{writers:?}");
}

#[tokio::test]
async fn seats_already_held_are_409_listing_them_and_nothing_is_taken() {
    let app = spawn_app().await;
    let event = app.create_grid_event(2, 10, json!({})).await;
    app.hold_ok(&event, "alice", json!([1, 2])).await;
    let body = assert_problem(
        app.hold(&event, "bob", json!([0, 1, 2, 3])).await,
        StatusCode::CONFLICT,
        "seats_unavailable",
    )
    .await;
    let listed: Vec<u64> = body["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["seat_id"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, [1, 2]);
    assert_eq!(&app.seat_map(&event).await[..4], "AHHA", "bob took nothing");
}

#[tokio::test]
async fn a_hold_across_blocks_is_all_or_nothing() {
    let app = spawn_app().await;
    // Each row is its own seat block.
    let event = app
        .create_grid_event(3, 4, json!({"max_seats_per_customer": 4}))
        .await;
    app.hold_ok(&event, "alice", json!([9])).await;
    // Rows 1 and 2 are free, row 3 is partly taken: nothing may stay held.
    assert_problem(
        app.hold(&event, "bob", json!([0, 4, 9])).await,
        StatusCode::CONFLICT,
        "seats_unavailable",
    )
    .await;
    assert_eq!(app.seat_map(&event).await, "AAAAAAAAAHAA");
    // The failed attempt gave bob's allowance back: he can hold his full limit.
    let hold = app.hold_ok(&event, "bob", json!([0, 1, 4, 5])).await;
    assert_eq!(seat_ids(&hold), [0, 1, 4, 5]);
}

#[tokio::test]
async fn unknown_duplicate_empty_and_too_many_seats_are_422() {
    let app = spawn_app().await;
    let event = app.create_grid_event(10, 10, json!({})).await;
    let unknown = assert_problem(
        app.hold(&event, "c", json!([100, {"row": 11, "seat": 1}, {"row": 1, "seat": 11}, {"section": "Nope", "row": 1, "seat": 1}])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_seats",
    )
    .await;
    assert_eq!(unknown["seats"].as_array().unwrap().len(), 4);
    assert_problem(
        app.hold(&event, "c", json!([5, 6, 5])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "duplicate_seats",
    )
    .await;
    assert_problem(
        app.hold(&event, "c", json!([0, {"row": 1, "seat": 1}]))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "duplicate_seats",
    )
    .await;
    assert_problem(
        app.hold(&event, "c", json!([])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_seats",
    )
    .await;
    assert_problem(
        app.hold(&event, "c", json!((0..11).collect::<Vec<_>>()))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "too_many_seats",
    )
    .await;
    assert_problem(
        app.hold(&event, "c", json!([-1])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_seat",
    )
    .await;
    assert_problem(
        app.hold(&event, "c", json!(["A1", true])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_seat",
    )
    .await;
    let wrong_type = app.hold(&event, "c", json!(5)).await;
    assert_problem(wrong_type, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    assert_eq!(
        app.seat_map(&event).await,
        "A".repeat(100),
        "no bad request took a seat"
    );
}

#[tokio::test]
async fn the_customer_limit_counts_held_and_booked_seats() {
    let app = spawn_app().await;
    let event = app
        .create_grid_event(2, 10, json!({"max_seats_per_customer": 4}))
        .await;
    let first = app.hold_ok(&event, "scalper", json!([0, 1])).await;
    let book = app.comp(first["hold_id"].as_str().unwrap()).await;
    assert_eq!(book.status(), StatusCode::OK);
    app.hold_ok(&event, "scalper", json!([2])).await;
    let over = assert_problem(
        app.hold(&event, "scalper", json!([3, 4])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "customer_limit_exceeded",
    )
    .await;
    assert_eq!(over["seats_in_use"], 3);
    assert_eq!(over["max_seats_per_customer"], 4);
    // Someone else is not affected, and the scalper may still take one more.
    app.hold_ok(&event, "fan", json!([3, 4])).await;
    app.hold_ok(&event, "scalper", json!([5])).await;
}

#[tokio::test]
async fn booking_a_hold_is_200_and_idempotent_for_its_customer() {
    let app = spawn_app().await;
    let event = app.create_grid_event(1, 10, json!({})).await;
    let hold = app.hold_ok(&event, "alice", json!([4, 5])).await;
    for _ in 0..2 {
        let response = app.comp(hold["hold_id"].as_str().unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK);
        let booked: Value = response.json().await.unwrap();
        assert_eq!(booked["status"], "booked");
        assert_eq!(seat_ids(&booked), [4, 5]);
    }
    assert_eq!(&app.seat_map(&event).await[4..6], "BB");
    assert_eq!(
        app.hold_status(hold["hold_id"].as_str().unwrap()).await,
        "booked"
    );
    // Booked seats cannot be held again.
    assert_problem(
        app.hold(&event, "bob", json!([5])).await,
        StatusCode::CONFLICT,
        "seats_unavailable",
    )
    .await;
}

#[tokio::test]
async fn only_the_events_organizer_books_without_payment_and_only_the_customer_releases() {
    let app = spawn_app().await;
    let event = app.create_grid_event(1, 10, json!({})).await;
    let hold = app.hold_ok(&event, "alice", json!([1])).await;
    let id = hold["hold_id"].as_str().unwrap();
    // Buyers pay through orders: neither someone else nor the hold's own customer books directly.
    for who in ["mallory", "alice"] {
        assert_problem(
            app.as_customer(Method::POST, &format!("/api/holds/{id}/book"), who)
                .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    assert_problem(
        app.as_customer(Method::DELETE, &format!("/api/holds/{id}"), "mallory")
            .await,
        StatusCode::FORBIDDEN,
        "not_hold_owner",
    )
    .await;
    let anonymous = app
        .client
        .post(app.url(&format!("/api/holds/{id}/book")))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // Another organizer does not manage this event.
    let other = app
        .client
        .post(app.url(&format!("/api/holds/{id}/book")))
        .header("authorization", bearer("rival-organizer", Role::Organizer))
        .send()
        .await
        .unwrap();
    assert_problem(other, StatusCode::FORBIDDEN, "forbidden").await;
    // The event's organizer comps it, for alice.
    let comped = app.comp(id).await;
    assert_eq!(comped.status(), StatusCode::OK);
    let comped: Value = comped.json().await.unwrap();
    assert_eq!(comped["customer_id"], "alice");
    assert_eq!(comped["status"], "booked");
}

#[tokio::test]
async fn releasing_frees_seats_at_once_and_a_released_hold_cannot_be_booked() {
    let app = spawn_app().await;
    let event = app.create_grid_event(1, 10, json!({})).await;
    let hold = app.hold_ok(&event, "alice", json!([7, 8])).await;
    let id = hold["hold_id"].as_str().unwrap();
    for _ in 0..2 {
        let released = app
            .as_customer(Method::DELETE, &format!("/api/holds/{id}"), "alice")
            .await;
        assert_eq!(released.status(), StatusCode::NO_CONTENT);
    }
    assert_eq!(&app.seat_map(&event).await[7..9], "AA");
    assert_eq!(app.hold_status(id).await, "released");
    assert_problem(app.comp(id).await, StatusCode::CONFLICT, "hold_released").await;
    app.hold_ok(&event, "bob", json!([7, 8])).await;
}

#[tokio::test]
async fn a_booked_hold_cannot_be_released() {
    let app = spawn_app().await;
    let event = app.create_grid_event(1, 10, json!({})).await;
    let hold = app.hold_ok(&event, "alice", json!([1])).await;
    let id = hold["hold_id"].as_str().unwrap();
    assert_eq!(app.comp(id).await.status(), StatusCode::OK);
    assert_problem(
        app.as_customer(Method::DELETE, &format!("/api/holds/{id}"), "alice")
            .await,
        StatusCode::CONFLICT,
        "hold_booked",
    )
    .await;
}

#[tokio::test]
async fn an_expired_hold_frees_its_seats_and_cannot_be_booked() {
    let app = spawn_app().await;
    let event = app
        .create_grid_event(1, 10, json!({"hold_seconds": 1}))
        .await;
    let hold = app.hold_ok(&event, "alice", json!([2, 3])).await;
    let id = hold["hold_id"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // No sweeper ran, yet the seats show as free and someone else can take one.
    assert_eq!(&app.seat_map(&event).await[2..4], "AA");
    assert_eq!(app.hold_status(id).await, "expired");
    assert_problem(app.comp(id).await, StatusCode::CONFLICT, "hold_expired").await;
    app.hold_ok(&event, "bob", json!([3])).await;

    // Taking the seat recorded alice's expiry first, in the same append.
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = $1 ORDER BY sequence",
    )
    .bind(SEAT_BLOCK)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(types, [SEAT_HELD, HOLD_EXPIRED, SEAT_HELD]);
    // An expired hold's seats no longer count against the customer's limit (2 + 9 would be 11).
    app.hold_ok(&event, "alice", json!([0, 1, 2, 4, 5, 6, 7, 8, 9]))
        .await;
}

#[tokio::test]
async fn unknown_holds_are_404() {
    let app = spawn_app().await;
    let missing = uuid::Uuid::new_v4();
    assert_problem(
        app.get(&format!("/api/holds/{missing}")).await,
        StatusCode::NOT_FOUND,
        "hold_not_found",
    )
    .await;
    assert_problem(
        app.comp(&missing.to_string()).await,
        StatusCode::NOT_FOUND,
        "hold_not_found",
    )
    .await;
    assert_problem(
        app.as_customer(Method::DELETE, &format!("/api/holds/{missing}"), "a")
            .await,
        StatusCode::NOT_FOUND,
        "hold_not_found",
    )
    .await;
    assert_problem(
        app.get("/api/holds/123").await,
        StatusCode::NOT_FOUND,
        "hold_not_found",
    )
    .await;
}

#[tokio::test]
async fn events_carry_hold_customer_seats_expiry_schema_version_and_correlation_id() {
    let app = spawn_app().await;
    let event = app.create_grid_event(1, 10, json!({})).await;
    let response = app
        .client
        .post(app.url(&format!("/api/events/{event}/holds")))
        .header("x-request-id", "req-42")
        .header("authorization", bearer("alice", Role::Buyer))
        .json(&json!({"seats": [1, 2]}))
        .send()
        .await
        .unwrap();
    let hold: Value = response.json().await.unwrap();
    let (payload, metadata, version): (Value, Value, String) =
        sqlx::query_as("SELECT payload, metadata, event_version FROM events WHERE event_type = $1")
            .bind(SEAT_HELD)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let held = &payload[SEAT_HELD];
    assert_eq!(held["hold_id"], hold["hold_id"]);
    assert_eq!(held["customer_id"], "alice");
    assert_eq!(held["seats"], json!([1, 2]));
    assert_eq!(
        held["expires_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap(),
        hold["expires_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );
    assert_eq!(version, "1");
    assert_eq!(metadata["correlation_id"], "req-42");
    assert_eq!(metadata["customer_id"], "alice");
}
