//! GraphQL refusals end to end: mutations answer with the same codes as REST, idempotency keys
//! make them safe to retry, and limits and malformed queries are refused with codes.

use std::time::Duration;

use serde_json::{json, Value};

use crate::graphql::SECTIONS_EVENT;
use crate::helpers::{error_code, spawn_system};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutations_answer_with_the_same_codes_as_rest() {
    let app = spawn_system().await;
    let event = app.create_grid_event(1, 20, 1).await;
    let first = app.hold(&event, "dan", &[0, 1]).await;
    let hold_id = first["data"]["holdSeats"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let taken = app.hold(&event, "eve", &[1, 2]).await;
    assert_eq!(error_code(&taken), "seats_unavailable");
    assert_eq!(taken["errors"][0]["extensions"]["status"], 409);
    assert_eq!(taken["errors"][0]["extensions"]["seats"][0]["seat_id"], 1);

    let cases: [(&str, Value, &str); 7] = [
        ("unknown seat", json!([{"seatId": 99}]), "unknown_seats"),
        (
            "duplicate",
            json!([{"seatId": 3}, {"seatId": 3}]),
            "duplicate_seats",
        ),
        ("empty", json!([]), "no_seats"),
        (
            "too many",
            json!((0..11).map(|i| json!({"seatId": i})).collect::<Vec<_>>()),
            "too_many_seats",
        ),
        (
            "both forms",
            json!([{"seatId": 3, "row": "1", "seat": "4"}]),
            "invalid_seat",
        ),
        (
            "labels",
            json!([{"row": "9", "seat": "1"}]),
            "unknown_seats",
        ),
        ("no row", json!([{"seat": "1"}]), "invalid_seat"),
    ];
    for (what, seats, code) in cases {
        let body = app
            .as_buyer("eve")
            .gql(
                "mutation($e: UUID!, $s: [SeatInput!]!) { holdSeats(eventId: $e, seats: $s) { id } }",
                json!({"e": event, "s": seats}),
            )
            .await;
        assert_eq!(error_code(&body), code, "{what}: {body}");
    }

    let missing = app
        .hold(&uuid::Uuid::new_v4().to_string(), "eve", &[0])
        .await;
    assert_eq!(error_code(&missing), "event_not_found");
    let bad_customer = app.hold(&event, "not a valid id!", &[3]).await;
    assert_eq!(error_code(&bad_customer), "unauthenticated");
    assert_eq!(bad_customer["errors"][0]["extensions"]["status"], 401);
    let nobody = app
        .gql(
            "mutation($e: UUID!) { holdSeats(eventId: $e, seats: [{seatId: 3}]) { id } }",
            json!({"e": event}),
        )
        .await;
    assert_eq!(error_code(&nobody), "unauthenticated");

    let book = "mutation($h: UUID!) { bookHold(holdId: $h) { status } }";
    let stolen = app.as_buyer("eve").gql(book, json!({"h": hold_id})).await;
    assert_eq!(error_code(&stolen), "forbidden");
    assert_eq!(stolen["errors"][0]["extensions"]["status"], 403);
    let dan = app.as_buyer("dan");
    let unknown = dan.gql(book, json!({"h": uuid::Uuid::new_v4()})).await;
    assert_eq!(error_code(&unknown), "hold_not_found");
    // The event's holds last one second.
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let late = app.as_organizer().gql(book, json!({"h": hold_id})).await;
    assert_eq!(error_code(&late), "hold_expired");

    let buyer_creates = dan
        .gql(
            "mutation { createEvent(input: {name: \"x\", layout: {rows: 2, cols: 2}}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&buyer_creates), "forbidden");
    let bad_layout = app
        .as_organizer()
        .gql(
            "mutation { createEvent(input: {name: \"x\", layout: {rows: 2}}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&bad_layout), "invalid_request");
    let zero = app
        .as_organizer()
        .gql(
            "mutation { createEvent(input: {name: \"\", layout: {rows: 0, cols: 2}}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&zero), "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_make_mutations_safe_to_retry() {
    let app = spawn_system().await;
    let organizer = app.as_organizer();
    let one = organizer
        .data(SECTIONS_EVENT, json!({"key": "evt-1"}))
        .await;
    let two = organizer
        .data(SECTIONS_EVENT, json!({"key": "evt-1"}))
        .await;
    assert_eq!(one["createEvent"]["id"], two["createEvent"]["id"]);
    let event = one["createEvent"]["id"].as_str().unwrap();
    let hold = "mutation($e: UUID!) { holdSeats(eventId: $e,
                  seats: [{seatId: 0}], idempotencyKey: \"h-1\") { id status expiresAt } }";
    let fay = app.as_buyer("fay");
    let a = fay.data(hold, json!({"e": event})).await;
    let b = fay.data(hold, json!({"e": event})).await;
    assert_eq!(a["holdSeats"]["id"], b["holdSeats"]["id"]);
    assert_eq!(b["holdSeats"]["status"], "HELD");
    // The stored answer is replayed: the same expiry, not a fresh one.
    assert_eq!(a["holdSeats"]["expiresAt"], b["holdSeats"]["expiresAt"]);
    // The same key with other arguments is refused, as in REST.
    let other_seats = fay
        .gql(
            "mutation($e: UUID!) { holdSeats(eventId: $e, seats: [{seatId: 1}], idempotencyKey: \"h-1\") { id } }",
            json!({"e": event}),
        )
        .await;
    assert_eq!(error_code(&other_seats), "idempotency_key_reused");
    // The same key from another caller, or on another event, names another hold.
    let gil = app.as_buyer("gil").gql(hold, json!({"e": event})).await;
    assert_eq!(error_code(&gil), "seats_unavailable");
    let other = organizer
        .data(SECTIONS_EVENT, json!({"key": "evt-2"}))
        .await;
    assert_ne!(other["createEvent"]["id"], one["createEvent"]["id"]);
    let elsewhere = fay
        .data(hold, json!({"e": other["createEvent"]["id"]}))
        .await;
    assert_ne!(elsewhere["holdSeats"]["id"], a["holdSeats"]["id"]);
    // Another organizer's key is theirs: a new event, not olga's.
    let oscar = app.as_("oscar", booking::Role::Organizer);
    let theirs = oscar.data(SECTIONS_EVENT, json!({"key": "evt-1"})).await;
    assert_ne!(theirs["createEvent"]["id"], one["createEvent"]["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_malformed_queries_are_refused_with_codes() {
    let app = spawn_system().await;
    let deep = app
        .gql(
            "{ __schema { types { fields { type { fields { type { fields { type { fields { type { name } } } } } } } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&deep), "query_too_deep");
    let fields: String = (0..1_100)
        .map(|i| format!("a{i}: events {{ pageInfo {{ hasNextPage }} }} "))
        .collect();
    let wide = app.gql(&format!("{{ {fields} }}"), json!({})).await;
    assert_eq!(error_code(&wide), "too_many_aliases");
    let aliases: String = (0..40)
        .map(|i| format!("a{i}: events {{ pageInfo {{ hasNextPage }} }} "))
        .collect();
    let aliased = app.gql(&format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(error_code(&aliased), "too_many_aliases");
    // Complexity: a page of 100 events, each with a page of 100 holds, is too much at once.
    let nested = app
        .gql(
            "{ events(first: 100) { edges { node { holds(first: 100) { edges { node { id } } } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&nested), "query_too_complex");
    let batch: Value = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!([{"query": "{ events { pageInfo { hasNextPage } } }"}, {"query": "{ events { pageInfo { hasNextPage } } }"}]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null);
    assert!(batch.get("data").is_none(), "batches are refused: {batch}");
    let broken = app.gql("{ events( }", json!({})).await;
    assert_eq!(error_code(&broken), "invalid_query");
    let unknown = app.gql("{ nope }", json!({})).await;
    assert_eq!(error_code(&unknown), "invalid_query");
    let bad_id = app.gql("{ hold(id: \"42\") { id } }", json!({})).await;
    assert_eq!(error_code(&bad_id), "invalid_query");
    let bad_customer = app
        .as_admin()
        .gql("{ customer(id: \"\") { id } }", json!({}))
        .await;
    assert_eq!(error_code(&bad_customer), "invalid_customer_id");

    let page = app
        .client
        .get(format!("{}/graphql", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("graphiql"));
}
