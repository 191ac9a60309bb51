use reqwest::StatusCode;
use serde_json::{json, Value};

use booking::Role;

use crate::helpers::{assert_problem, bearer, spawn_app, ORGANIZER};

#[tokio::test]
async fn creating_a_grid_event_returns_201_with_location_and_layout() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/api/events",
            &json!({"name": "Seed show", "date": "2026-12-31T20:00:00Z", "venue": "Hall", "rows": 10, "cols": 10}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/events/{}", created["id"].as_str().unwrap())
    );
    assert_eq!(created["seat_count"], 100);
    assert_eq!(created["starts_at"], "2026-12-31T20:00:00Z");
    assert_eq!(created["hold_seconds"], 600);
    assert_eq!(created["max_seats_per_customer"], 10);
    assert_eq!(created["sections"][0]["rows"][9]["first_seat_id"], 90);

    let fetched: Value = app.get(&location).await.json().await.unwrap();
    assert_eq!(fetched, created);
}

#[tokio::test]
async fn creating_an_event_with_sections_and_price_tiers() {
    let app = spawn_app().await;
    let body = json!({
        "name": "Opera",
        "currency": "USD",
        "hold_seconds": 900,
        "max_seats_per_customer": 4,
        "layout": {
            "price_tiers": [{"name": "Gold", "price_cents": 12000}, {"name": "Silver", "price_cents": 6000}],
            "sections": [
                {"name": "Stalls", "price_tier": "Gold", "rows": [{"label": "A", "seats": 8}, {"label": "B", "seats": 10}]},
                {"name": "Circle", "price_tier": "Silver", "rows": [{"label": "AA", "seats": 12}]}
            ]
        }
    });
    let response = app.post("/api/events", &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let event: Value = response.json().await.unwrap();
    assert_eq!(event["seat_count"], 30);
    assert_eq!(event["currency"], "USD");
    assert_eq!(event["hold_seconds"], 900);
    assert_eq!(event["sections"][1]["rows"][0]["first_seat_id"], 18);

    // Seats are addressed by labels and by id alike.
    let id = event["id"].as_str().unwrap();
    let hold = app
        .hold_ok(
            id,
            "c1",
            json!([{"section": "Circle", "row": "AA", "seat": 12}, 0]),
        )
        .await;
    assert_eq!(hold["seats"][0]["seat_id"], 29);
    assert_eq!(hold["seats"][0]["price_cents"], 6000);
    assert_eq!(hold["total_cents"], 18000);
    assert_eq!(hold["currency"], "USD");
}

#[tokio::test]
async fn invalid_events_are_422_with_every_problem_listed() {
    let app = spawn_app().await;
    let bad = json!({"name": "", "rows": 10, "cols": 10, "hold_seconds": 999999, "max_seats_per_customer": 0});
    let body = assert_problem(
        app.post("/api/events", &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 3, "{body}");

    for bad_layout in [
        json!({"name": "x"}),
        json!({"name": "x", "rows": 0, "cols": 5}),
        json!({"name": "x", "rows": 1000, "cols": 1000}),
        json!({"name": "x", "layout": {"sections": [{"name": "S", "price_tier": "none", "rows": [{"label": "1", "seats": 3}]}], "price_tiers": [{"name": "T", "price_cents": 1}]}}),
        json!({"name": "x", "layout": {"sections": [{"name": "S", "price_tier": "T", "rows": [{"label": "1", "seats": 3}]}]}}),
        json!({"name": "x", "layout": {"rows": 2, "cols": 2, "sections": []}}),
    ] {
        assert_problem(
            app.post("/api/events", &bad_layout).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        )
        .await;
    }
}

#[tokio::test]
async fn malformed_or_mistyped_bodies_are_400_or_422_never_500() {
    let app = spawn_app().await;
    let send = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/api/events"))
            .header("authorization", bearer(ORGANIZER, Role::Organizer))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_problem(
        send("{\"name\":", "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    assert_problem(
        send(
            "{\"name\": 5, \"rows\": 2, \"cols\": 2}",
            "application/json",
        )
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    assert_problem(
        send(
            "{\"name\": \"x\", \"rows\": -2, \"cols\": 2}",
            "application/json",
        )
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    assert_problem(
        send("{\"name\": \"x\", \"rowz\": 2}", "application/json")
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    assert_problem(
        send("[]", "application/json").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    assert_problem(
        send("{}", "text/plain").await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = spawn_app().await;
    let huge = format!(
        "{{\"name\": \"{}\", \"rows\": 1, \"cols\": 1}}",
        "x".repeat(100_000)
    );
    let response = app
        .client
        .post(app.url("/api/events"))
        .header("authorization", bearer(ORGANIZER, Role::Organizer))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn unknown_events_are_404() {
    let app = spawn_app().await;
    let missing = uuid::Uuid::new_v4();
    for path in [
        format!("/api/events/{missing}"),
        format!("/api/events/{missing}/seats"),
        "/api/events/not-a-uuid".to_owned(),
    ] {
        assert_problem(
            app.get(&path).await,
            StatusCode::NOT_FOUND,
            "event_not_found",
        )
        .await;
    }
    let hold = app.hold(&missing.to_string(), "c1", json!([1])).await;
    assert_problem(hold, StatusCode::NOT_FOUND, "event_not_found").await;
    assert_problem(
        app.get("/api/nothing-here").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let wrong_method = app.client.put(app.url("/api/events")).send().await.unwrap();
    assert_problem(
        wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn the_seat_map_shows_each_status_and_stays_compact_for_20000_seats() {
    let app = spawn_app().await;
    let event = app.create_grid_event(100, 200, json!({})).await;
    let hold = app.hold_ok(&event, "fan", json!([0, 1])).await;
    let booked = app.hold_ok(&event, "fan", json!([19_999])).await;
    let book = app.comp(booked["hold_id"].as_str().unwrap()).await;
    assert_eq!(book.status(), StatusCode::OK);

    let response = app.get(&format!("/api/events/{event}/seats")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let raw = response.bytes().await.unwrap();
    assert!(
        raw.len() < 21_000,
        "seat map of 20,000 seats is {} bytes",
        raw.len()
    );
    let map: Value = serde_json::from_slice(&raw).unwrap();
    let seats = map["seats"].as_str().unwrap();
    assert_eq!(seats.len(), 20_000);
    // Without a read side in this process, the map comes from the event store itself.
    assert_eq!(map["consistency"], "strong");
    let bad = app
        .get(&format!("/api/events/{event}/seats?consistency=sometimes"))
        .await;
    assert_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    assert_eq!(&seats[..3], "HHA");
    assert_eq!(&seats[19_999..], "B");
    assert_eq!(
        (
            map["held"].as_u64(),
            map["booked"].as_u64(),
            map["available"].as_u64()
        ),
        (Some(2), Some(1), Some(19_997))
    );
    assert!(hold["hold_id"].is_string());
}
