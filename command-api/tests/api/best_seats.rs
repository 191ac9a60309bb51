//! Holds of the best available seats over HTTP: the pick never offers a taken seat, keeps seats
//! together when asked, honours the organizer's focal point, and a crowd asking at once fills the
//! hall without one buyer being told "taken".

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{json, Value};

use booking::Role;

use crate::helpers::{
    assert_problem, bearer, crowd_at_once, own_core, replay_and_check_no_double_sale, seat_ids,
    spawn_app, start_on, TestApp,
};

/// Asks for the best available seats as `customer`.
async fn best(app: &TestApp, event: &str, customer: &str, ask: Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/events/{event}/holds")))
        .header("authorization", bearer(customer, Role::Buyer))
        .json(&ask)
        .send()
        .await
        .unwrap()
}

/// Asks for the best available seats, which must be held: the hold's view.
async fn best_ok(app: &TestApp, event: &str, customer: &str, ask: Value) -> Value {
    let response = best(app, event, customer, ask).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// (row, seat number) of every seat of a hold view.
fn places(view: &Value) -> Vec<(String, u64)> {
    view["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let row = s["row"].as_str().unwrap().to_owned();
            (row, s["seat"].as_u64().unwrap())
        })
        .collect()
}

/// Adjacent seats in one row.
fn together(view: &Value) -> bool {
    let places = places(view);
    places
        .windows(2)
        .all(|w| w[0].0 == w[1].0 && w[1].1 == w[0].1 + 1)
}

#[tokio::test]
async fn best_available_takes_the_centre_front_and_never_a_taken_seat() {
    let app = spawn_app().await;
    let event = app.create_grid_event(3, 10, json!({})).await;
    // Bob took the four centre seats of the front row by name.
    app.hold_ok(&event, "bob", json!([3, 4, 5, 6])).await;

    let first = best_ok(
        &app,
        &event,
        "alice",
        json!({"quantity": 2, "together": true}),
    )
    .await;
    let seats = seat_ids(&first);
    assert!(together(&first), "{first}");
    // Two of the front row's three free seats at either end would leave the third alone: the
    // second row's centre.
    assert_eq!(seats, [14, 15]);

    let second: Value = best_ok(
        &app,
        &event,
        "carol",
        json!({"quantity": 3, "together": true}),
    )
    .await;
    let taken: Vec<u64> = vec![3, 4, 5, 6, 14, 15];
    assert!(together(&second), "{second}");
    assert!(seat_ids(&second).iter().all(|s| !taken.contains(s)));
    assert_eq!(
        app.hold_status(second["hold_id"].as_str().unwrap()).await,
        "held"
    );
}

#[tokio::test]
async fn the_organizers_focal_point_and_the_buyers_section_choose_where() {
    let app = spawn_app().await;
    let layout = json!({
        "price_tiers": [{"name": "Front", "price_cents": 9000}, {"name": "Back", "price_cents": 3000}],
        "sections": [
            {"name": "Stalls", "price_tier": "Front", "rows": [{"label": "A", "seats": 8}, {"label": "B", "seats": 8}]},
            {"name": "Circle", "price_tier": "Back", "rows": [{"label": "1", "seats": 6}, {"label": "2", "seats": 6}]}
        ]
    });
    let created = app
        .post(
            "/api/events",
            &json!({"name": "Focal", "layout": layout,
                    "focal_point": {"section": "Stalls", "row_index": 1, "across_percent": 0}}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let event = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let shown: Value = app
        .get(&format!("/api/events/{event}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        shown["focal_point"],
        json!({"section": "Stalls", "row_index": 1, "across_percent": 0})
    );
    // The focal point is the first seat of row B.
    let view: Value = best_ok(
        &app,
        &event,
        "alice",
        json!({"quantity": 2, "together": true}),
    )
    .await;
    assert_eq!(places(&view), [("B".into(), 1), ("B".into(), 2)]);
    // Only the Circle, by section or by price tier.
    for ask in [
        json!({"quantity": 2, "section": "Circle"}),
        json!({"quantity": 2, "price_tier": "Back"}),
    ] {
        let view = best_ok(&app, &event, "bob", ask).await;
        assert!(
            view["seats"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["section"] == "Circle"),
            "{view}"
        );
    }

    let bad = json!({"name": "x", "rows": 2, "cols": 2, "focal_point": {"row_index": 5}});
    assert_problem(
        app.post("/api/events", &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn bad_best_available_requests_are_refused_and_a_full_hall_says_sold_out() {
    let app = spawn_app().await;
    let event = app
        .create_grid_event(1, 4, json!({"max_seats_per_customer": 3}))
        .await;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    for (ask, code) in [
        (json!({"quantity": 0}), "invalid_request"),
        (json!({"quantity": 11}), "invalid_request"),
        (json!({"quantity": 4}), "too_many_seats"),
        (
            json!({"quantity": 1, "section": "Nowhere"}),
            "invalid_request",
        ),
        (
            json!({"quantity": 1, "price_tier": "Gold"}),
            "invalid_request",
        ),
        (json!({"quantity": 1, "seats": [1]}), "invalid_request"),
        (json!({"together": true}), "invalid_request"),
        (json!({}), "invalid_request"),
    ] {
        let response = best(&app, &event, "alice", ask.clone()).await;
        let body = assert_problem(response, unprocessable, code).await;
        assert!(
            !body["detail"].as_str().unwrap().is_empty(),
            "{ask}: {body}"
        );
    }

    app.hold_ok(&event, "bob", json!([0, 2])).await;
    // Seats 1 and 3 are free but not together.
    let apart = best(
        &app,
        &event,
        "alice",
        json!({"quantity": 2, "together": true}),
    )
    .await;
    let body = assert_problem(apart, StatusCode::CONFLICT, "not_enough_seats").await;
    assert_eq!(body["seats_free"], 2);
    let singles: Value = best_ok(&app, &event, "alice", json!({"quantity": 2})).await;
    assert_eq!(seat_ids(&singles), [1, 3]);
    let full = best(&app, &event, "carol", json!({"quantity": 1})).await;
    let body = assert_problem(full, StatusCode::CONFLICT, "sold_out").await;
    assert_eq!(body["seats_free"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_asking_for_two_best_seats_together_fills_the_hall_without_a_conflict() {
    const BUYERS: usize = 60;
    let app = spawn_app().await;
    // 10 rows of 10 seats: pairs can fill every row.
    let event = app.create_grid_event(10, 10, json!({})).await;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(BUYERS));
    let tasks: Vec<_> = (0..BUYERS)
        .map(|i| {
            let client = app.client.clone();
            let url = app.url(&format!("/api/events/{event}/holds"));
            let start = start.clone();
            tokio::spawn(async move {
                let token = bearer(&format!("fan-{i}"), Role::Buyer);
                let mut answers: Vec<(u16, Value)> = Vec::new();
                start.wait().await;
                loop {
                    let response = client
                        .post(&url)
                        .header("authorization", &token)
                        .json(&json!({"quantity": 2, "together": true}))
                        .send()
                        .await
                        .unwrap();
                    let status = response.status().as_u16();
                    let body: Value = response.json().await.unwrap();
                    let done = status != 201;
                    answers.push((status, body));
                    if done {
                        return answers;
                    }
                }
            })
        })
        .collect();
    let mut codes: HashMap<String, usize> = HashMap::new();
    let mut held: Vec<u64> = Vec::new();
    for task in tasks {
        for (status, body) in task.await.unwrap() {
            let code = match status {
                201 => {
                    assert!(together(&body), "{body}");
                    held.extend(seat_ids(&body));
                    "201".to_owned()
                }
                _ => body["code"].as_str().unwrap_or("?").to_owned(),
            };
            *codes.entry(code).or_default() += 1;
        }
    }
    println!("answers: {codes:?}");
    // Every buyer stopped on a full hall or on their limit (10 seats each), never on a seat
    // another buyer took first.
    assert!(
        codes
            .keys()
            .all(|c| ["201", "sold_out", "customer_limit_exceeded"].contains(&c.as_str())),
        "{codes:?}"
    );
    held.sort();
    let before = held.len();
    held.dedup();
    assert_eq!(held.len(), before, "a seat was held twice");
    assert_eq!(held.len(), 100, "the hall is sold out");
    assert_eq!(app.seat_map(&event).await, "H".repeat(100));
    replay_and_check_no_double_sale(&app.pool).await;
}

#[tokio::test]
async fn a_pick_from_memory_another_server_made_stale_is_made_again_not_refused() {
    let first = spawn_app().await;
    let second = start_on(first.db_url.clone(), first.pool.clone()).await;
    let event = first.create_grid_event(1, 10, json!({})).await;
    // The first server now keeps the row in memory: 4 and 5 held.
    let alice = best_ok(
        &first,
        &event,
        "alice",
        json!({"quantity": 2, "together": true}),
    )
    .await;
    assert_eq!(seat_ids(&alice), [4, 5]);
    // The second server sells 2 and 3, which the first does not know.
    second.hold_ok(&event, "bob", json!([2, 3])).await;

    // The first server's memory offers 2-3 (best on a tie); its writer finds them taken, and
    // the request picks again from the fresh state instead of answering "taken".
    let carol = best_ok(
        &first,
        &event,
        "carol",
        json!({"quantity": 2, "together": true}),
    )
    .await;
    assert_eq!(seat_ids(&carol), [6, 7]);
    let replay = replay_and_check_no_double_sale(&first.pool).await;
    assert_eq!(replay.held.len(), 3);
    // Carol's first attempt wrote nothing: her reservation was to commit with its seats, which
    // were taken (one transaction, crate booking::linked); the second wrote it once.
    let carol_events: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(format!("{event}/carol"))
    .fetch_all(&first.pool)
    .await
    .unwrap();
    assert_eq!(carol_events, ["AllowanceReserved"]);
}

#[tokio::test]
async fn a_keyed_best_available_hold_run_again_answers_the_same_hold() {
    use booking::{BookingCommands, Caller, RequestContext, SeatChoice};
    use domain::{BestSeats, EventId};
    let app = spawn_app().await;
    let event = app.create_grid_event(2, 10, json!({})).await;
    let event_id = EventId(event.parse().unwrap());
    let core = own_core(&app);
    let alice = Caller::buyer("alice").unwrap();
    let ask = SeatChoice::Best(BestSeats {
        quantity: 2,
        together: true,
        ..Default::default()
    });
    let ctx = RequestContext {
        correlation_id: "test".into(),
        id_seed: Some("alice\nkey-1".into()),
    };
    let first = core
        .hold_seats(event_id, &alice, ask.clone(), &ctx)
        .await
        .unwrap();
    // Someone else takes the next best seats: a new pick would differ, a re-run must not.
    app.hold_ok(&event, "bob", json!([2, 3, 6, 7])).await;
    let again = core
        .hold_seats(event_id, &alice, ask.clone(), &ctx)
        .await
        .unwrap();
    assert_eq!(again.hold_id, first.hold_id);
    assert_eq!(again.seats, first.seats);
    // Released, the re-run answers the hold as it is, and takes nothing new.
    let released = app
        .as_customer(
            reqwest::Method::DELETE,
            &format!("/api/holds/{}", first.hold_id),
            "alice",
        )
        .await;
    assert_eq!(released.status(), StatusCode::NO_CONTENT);
    let after = core.hold_seats(event_id, &alice, ask, &ctx).await.unwrap();
    assert_eq!(after.hold_id, first.hold_id);
    assert_eq!(app.seat_map(&event).await, "AAHHAAHHAAAAAAAAAAAA");
    assert_eq!(core.best_seats_claimed(event_id), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_at_a_cold_event_reads_each_seat_block_from_the_store_once() {
    use booking::SeatChoice;
    use domain::{BestSeats, EventId};
    const BUYERS: usize = 40;
    // Given an event of 10 rows (10 seat blocks) that no writer of this process has read yet,
    let app = spawn_app().await;
    let event = app.create_grid_event(10, 10, json!({})).await;
    let event_id = EventId(event.parse().unwrap());
    let core = own_core(&app);
    // when a crowd asks for 2 best seats at once,
    let ask = |_| {
        SeatChoice::Best(BestSeats {
            quantity: 2,
            ..Default::default()
        })
    };
    let mut held = Vec::new();
    for answer in crowd_at_once(&core, event_id, BUYERS, ask).await {
        let view = answer.expect("every buyer gets 2 seats");
        held.extend(view.seats.iter().map(|s| s.seat_id));
    }
    // then every buyer got seats, none twice, and each block was read from the store at most
    // once: the crowd waited for the first reader instead of reading every block again.
    held.sort();
    held.dedup();
    assert_eq!(held.len(), 2 * BUYERS);
    let reads = core.cold_block_reads();
    assert!((1..=10).contains(&reads), "{reads} block reads");
    replay_and_check_no_double_sale(&app.pool).await;
}
