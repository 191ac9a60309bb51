use reqwest::StatusCode;
use serde_json::{json, Value};

use booking::Role;

use crate::helpers::{assert_problem, bearer, spawn_app, TestApp, ORGANIZER};

/// `POST` with an idempotency key: events as the organizer, holds as the buyer alice.
async fn post_with_key(app: &TestApp, path: &str, key: &str, body: &Value) -> reqwest::Response {
    let caller = if path == "/api/events" {
        bearer(ORGANIZER, Role::Organizer)
    } else {
        bearer("alice", Role::Buyer)
    };
    post_as(app, &caller, path, key, body).await
}

async fn post_as(
    app: &TestApp,
    authorization: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("idempotency-key", key)
        .header("authorization", authorization)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_key_belongs_to_its_caller() {
    let app = spawn_app().await;
    let event = app.create_grid_event(1, 10, json!({})).await;
    let path = format!("/api/events/{event}/holds");
    let alices = post_as(
        &app,
        &bearer("alice", Role::Buyer),
        &path,
        "same",
        &json!({"seats": [1]}),
    )
    .await;
    assert_eq!(alices.status(), StatusCode::CREATED);
    let alices: Value = alices.json().await.unwrap();
    // Bob's request with the same key is his own: it runs, and is not told about alice's hold.
    let bobs = post_as(
        &app,
        &bearer("bob", Role::Buyer),
        &path,
        "same",
        &json!({"seats": [2]}),
    )
    .await;
    assert_eq!(bobs.status(), StatusCode::CREATED);
    assert!(bobs.headers().get("idempotent-replayed").is_none());
    let bobs: Value = bobs.json().await.unwrap();
    assert_eq!(bobs["customer_id"], "bob");
    assert_ne!(bobs["hold_id"], alices["hold_id"]);
    // Without a valid token there is no replay to be had, only a 401.
    let anonymous = app
        .client
        .post(app.url(&path))
        .header("idempotency-key", "same")
        .json(&json!({"seats": [1]}))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn the_same_key_and_body_replays_the_stored_response_and_holds_once() {
    let app = spawn_app().await;
    let event = app.create_grid_event(1, 10, json!({})).await;
    let path = format!("/api/events/{event}/holds");
    let body = json!({"seats": [1, 2]});
    let first = post_with_key(&app, &path, "key-1", &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();

    let again = post_with_key(&app, &path, "key-1", &body).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["location"], location);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first);

    let holds: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
        .bind(domain::stored::event_type::SEAT_HELD)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(holds, 1);
}

#[tokio::test]
async fn errors_are_replayed_too() {
    let app = spawn_app().await;
    let event = app.create_grid_event(1, 10, json!({})).await;
    let path = format!("/api/events/{event}/holds");
    app.hold_ok(&event, "bob", json!([1])).await;
    let body = json!({"seats": [1]});
    assert_problem(
        post_with_key(&app, &path, "k", &body).await,
        StatusCode::CONFLICT,
        "seats_unavailable",
    )
    .await;
    // Even after the seat frees up, the key answers what it answered.
    let replay = post_with_key(&app, &path, "k", &body).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_problem(replay, StatusCode::CONFLICT, "seats_unavailable").await;
}

#[tokio::test]
async fn the_same_key_with_a_different_body_is_422() {
    let app = spawn_app().await;
    let event = app.create_grid_event(1, 10, json!({})).await;
    let path = format!("/api/events/{event}/holds");
    post_with_key(&app, &path, "key-2", &json!({"seats": [1]})).await;
    let other = post_with_key(&app, &path, "key-2", &json!({"seats": [2]})).await;
    assert_problem(
        other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    // The same caller's key on another route is another request too.
    let other_path = post_as(
        &app,
        &bearer("alice", Role::Buyer),
        "/api/events",
        "key-2",
        &json!({"name": "x", "rows": 1, "cols": 1}),
    )
    .await;
    assert_problem(
        other_path,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
}

#[tokio::test]
async fn a_key_still_in_flight_is_409_and_a_stale_one_is_taken_over() {
    let app = spawn_app().await;
    let event = app.create_grid_event(1, 10, json!({})).await;
    let path = format!("/api/events/{event}/holds");
    // A request with this key is being processed (by another server, say).
    sqlx::query("INSERT INTO idempotency_keys (key, fingerprint, state) VALUES (E'alice\\nbusy', '\\x00', 'in_flight')")
        .execute(&app.pool)
        .await
        .unwrap();
    let body = json!({"seats": [1]});
    assert_problem(
        post_with_key(&app, &path, "busy", &body).await,
        StatusCode::CONFLICT,
        "idempotency_request_in_flight",
    )
    .await;

    // Its server died long ago: the key is free again and the request runs.
    sqlx::query(
        "UPDATE idempotency_keys SET updated_at = now() - interval '10 minutes' WHERE key = E'alice\\nbusy'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        post_with_key(&app, &path, "busy", &body).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn keys_expire_after_24_hours() {
    let app = spawn_app().await;
    let response = post_with_key(
        &app,
        "/api/events",
        "old",
        &json!({"name": "a", "rows": 1, "cols": 1}),
    )
    .await;
    let first: Value = response.json().await.unwrap();
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&app.pool)
        .await
        .unwrap();
    let response = post_with_key(
        &app,
        "/api/events",
        "old",
        &json!({"name": "b", "rows": 1, "cols": 1}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(response.headers().get("idempotent-replayed").is_none());
    let second: Value = response.json().await.unwrap();
    assert_eq!(second["name"], "b");
    assert_ne!(second["id"], first["id"]);
}

/// A fresh event and alice's hold of `seat` with `key`: the app, the holds path, the body sent
/// and the hold as first answered.
async fn held_with_key(key: &str, seat: u32) -> (TestApp, String, String, Value, Value) {
    let app = spawn_app().await;
    let event = app.create_grid_event(1, 10, json!({})).await;
    let path = format!("/api/events/{event}/holds");
    let body = json!({"seats": [seat]});
    let first: Value = post_with_key(&app, &path, key, &body)
        .await
        .json()
        .await
        .unwrap();
    (app, event, path, body, first)
}

/// As if the server that ran the request died before storing its response.
async fn crash_before_storing(app: &TestApp) {
    sqlx::query(
        "UPDATE idempotency_keys SET state = 'in_flight', updated_at = now() - interval '10 minutes'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_rerun_after_a_crash_lands_on_the_same_hold() {
    let (app, event, path, body, first) = held_with_key("crashy", 3).await;
    crash_before_storing(&app).await;
    let rerun = post_with_key(&app, &path, "crashy", &body).await;
    assert_eq!(rerun.status(), StatusCode::CREATED);
    let rerun: Value = rerun.json().await.unwrap();
    assert_eq!(rerun["hold_id"], first["hold_id"]);
    // The re-run reports the hold as it is, not as if it had just been placed.
    assert_eq!(rerun["expires_at"], first["expires_at"]);
    assert_eq!(app.seat_map(&event).await, "AAAHAAAAAA");
}

#[tokio::test]
async fn a_rerun_after_a_crash_reports_what_became_of_the_hold_since() {
    let (app, event, path, body, first) = held_with_key("crashy", 4).await;
    let id = first["hold_id"].as_str().unwrap();
    let released = app
        .as_customer(
            reqwest::Method::DELETE,
            &format!("/api/holds/{id}"),
            "alice",
        )
        .await;
    assert_eq!(released.status(), StatusCode::NO_CONTENT);
    // The server applied the hold but died before storing the response; the client retries after
    // the hold was released (by another tab, say).
    crash_before_storing(&app).await;
    let rerun = post_with_key(&app, &path, "crashy", &body).await;
    let status = rerun.status();
    let rerun: Value = rerun.json().await.unwrap();
    assert!(status.is_success(), "{status} {rerun}");
    assert_eq!(rerun["hold_id"], first["hold_id"]);
    assert_eq!(rerun["status"], "released", "{rerun}");
    assert_eq!(app.seat_map(&event).await, "AAAAAAAAAA", "not placed again");
}

#[tokio::test]
async fn invalid_keys_are_400() {
    let app = spawn_app().await;
    let long = "k".repeat(300);
    let response = post_with_key(
        &app,
        "/api/events",
        &long,
        &json!({"name": "a", "rows": 1, "cols": 1}),
    )
    .await;
    assert_problem(response, StatusCode::BAD_REQUEST, "invalid_idempotency_key").await;
}

#[tokio::test]
async fn a_retry_after_a_server_error_lands_on_what_the_failed_run_created() {
    let (app, _, path, body, first) = held_with_key("flaky", 6).await;
    // As if the run had placed the hold and then answered 5xx (say, the database went away before
    // the response was stored): the layer reopens the key instead of storing the answer.
    sqlx::query("UPDATE idempotency_keys SET state = 'in_flight', response_status = NULL")
        .execute(&app.pool)
        .await
        .unwrap();
    booking::idempotency::IdempotencyStore::new(app.pool.clone())
        .reopen("alice\nflaky")
        .await
        .unwrap();
    let retry = post_with_key(&app, &path, "flaky", &body).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["hold_id"], first["hold_id"], "no second hold");
    assert_eq!(retry["expires_at"], first["expires_at"]);
    let holds: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
        .bind(domain::stored::event_type::SEAT_HELD)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(holds, 1);
    // A different request under the reopened key is refused, as for any used key.
    sqlx::query("UPDATE idempotency_keys SET state = 'retry'")
        .execute(&app.pool)
        .await
        .unwrap();
    let other = post_with_key(&app, &path, "flaky", &json!({"seats": [7]})).await;
    assert_problem(
        other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
}

#[tokio::test]
async fn a_rerun_of_a_hold_that_never_took_effect_is_refused_not_created() {
    use booking::{BookingCommands, BookingService, Caller, EventStore, RequestContext};
    use domain::{
        CustomerAllowance, CustomerAllowanceCommand, CustomerId, EventId, HoldId, ReturnReason,
        SeatId, SeatRef,
    };
    let app = spawn_app().await;
    let event = app.create_grid_event(1, 10, json!({})).await;
    let event_id = EventId(event.parse().unwrap());
    let alice = CustomerId::parse("alice").unwrap();
    let ctx = RequestContext {
        correlation_id: "test".into(),
        id_seed: Some("alice\nkey-1".into()),
    };
    // The first run of alice's keyed hold failed (a block refused: the seat went to someone
    // else) and gave its allowance back; its server died before storing the 409.
    let store = EventStore::new(app.pool.clone(), Default::default());
    let hold_id = HoldId(ctx.new_id(&format!("hold\n{alice}")));
    let allowance = CustomerAllowance::aggregate_id(event_id, &alice);
    let meta = std::collections::HashMap::new();
    let now = chrono::Utc::now();
    store
        .execute::<CustomerAllowance>(&allowance, &meta, || CustomerAllowanceCommand::Reserve {
            event_id,
            customer_id: alice.clone(),
            hold_id,
            seats: vec![SeatId(5)],
            expires_at: now + chrono::Duration::minutes(10),
            limit: 10,
            now,
        })
        .await
        .unwrap();
    store
        .execute::<CustomerAllowance>(&allowance, &meta, || CustomerAllowanceCommand::Return {
            hold_id,
            reason: ReturnReason::HoldFailed,
            now,
        })
        .await
        .unwrap();

    // The re-run answers the refusal, never a "created" hold that does not exist.
    let core = BookingService::new(store, Default::default());
    let caller = Caller::buyer("alice").unwrap();
    let rerun = core
        .hold_seats(event_id, &caller, vec![SeatRef::Id(5)].into(), &ctx)
        .await
        .unwrap_err();
    assert_eq!(rerun.code(), "hold_failed", "{rerun}");
    assert_eq!(app.seat_map(&event).await, "AAAAAAAAAA");
}
