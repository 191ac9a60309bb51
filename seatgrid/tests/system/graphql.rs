//! GraphQL queries and mutations end to end: read models, customer views, best available
//! (refusals, retries and limits: `graphql_refusals`).

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{error_code, eventually, spawn_system};

pub(crate) const SECTIONS_EVENT: &str = r#"mutation($key: String) {
  createEvent(idempotencyKey: $key, input: {
    name: "Sections night", currency: "EUR", maxSeatsPerCustomer: 4,
    layout: {
      priceTiers: [{name: "Premium", priceCents: 9000}, {name: "Standard", priceCents: 4500}],
      sections: [
        {name: "Stalls", priceTier: "Premium", rows: [{label: "A", seats: 3}, {label: "B", seats: 3}]},
        {name: "Circle", priceTier: "Standard", rows: [{label: "1", seats: 4}]}
      ]
    }
  }) { id name seatCount sections { name priceCents rows { label seats firstSeatId } } }
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_event_then_query_layout_availability_and_seat_map() {
    let app = spawn_system().await;
    let created = app.as_organizer().data(SECTIONS_EVENT, json!({})).await;
    let event = &created["createEvent"];
    let id = event["id"].as_str().unwrap();
    assert_eq!(event["seatCount"], 10);
    assert_eq!(event["sections"][1]["rows"][0]["firstSeatId"], 6);
    assert_eq!(event["sections"][0]["priceCents"], 9000);

    let held = app
        .as_buyer("ann")
        .gql(
            r#"mutation($e: UUID!) { holdSeats(eventId: $e,
                 seats: [{section: "Stalls", row: "B", seat: "2"}, {seatId: 7}]) {
                 id status customerId totalCents seats { seatId section row seat priceTier priceCents } } }"#,
            json!({"e": id}),
        )
        .await;
    let hold = &held["data"]["holdSeats"];
    assert_eq!(hold["status"], "HELD", "{held}");
    assert_eq!(hold["totalCents"], 9000 + 4500);
    assert_eq!(hold["seats"][0]["seatId"], 4);
    assert_eq!(hold["seats"][1]["section"], "Circle");

    let seats = app.wait_for_read_side(id).await;
    assert_eq!(seats, "AAAAHAAHAA");
    let data = app
        .data(
            r#"query($e: UUID!) {
                 event(id: $e) { name currency availability { available held booked }
                   availabilityBySection { name available held }
                   availabilityByPriceTier { name available held } }
                 seatMap(eventId: $e) { seatCount encoding seats version available held booked
                   sections { name held } priceTiers { name held } } }"#,
            json!({"e": id}),
        )
        .await;
    assert_eq!(
        data["event"]["availability"],
        json!({"available": 8, "held": 2, "booked": 0})
    );
    assert_eq!(
        data["event"]["availabilityBySection"],
        json!([{"name": "Stalls", "available": 5, "held": 1}, {"name": "Circle", "available": 3, "held": 1}])
    );
    assert_eq!(data["event"]["availabilityByPriceTier"][1]["held"], 1);
    assert_eq!(data["seatMap"]["seatCount"], 10);
    assert_eq!(data["seatMap"]["encoding"], "A=available,H=held,B=booked");
    assert_eq!(data["seatMap"]["held"], 2);
    assert!(data["seatMap"]["version"].as_i64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_paginated_relay_style() {
    let app = spawn_system().await;
    for _ in 0..3 {
        app.create_grid_event(2, 2, 600).await;
    }
    let page = |after: Value| {
        let app = &app;
        async move {
            app.data(
                "query($after: String) { events(first: 2, after: $after) {
                   edges { cursor node { id seatCount availability { available } } }
                   pageInfo { hasNextPage hasPreviousPage endCursor } } }",
                json!({"after": after}),
            )
            .await["events"]
                .clone()
        }
    };
    let first = eventually(Duration::from_secs(10), || async {
        let p = page(Value::Null).await;
        (p["pageInfo"]["hasNextPage"] == true).then_some(p)
    })
    .await;
    assert_eq!(first["edges"].as_array().unwrap().len(), 2);
    assert_eq!(first["edges"][0]["node"]["availability"]["available"], 4);
    let second = page(first["pageInfo"]["endCursor"].clone()).await;
    assert_eq!(second["edges"].as_array().unwrap().len(), 1);
    assert_eq!(second["pageInfo"]["hasNextPage"], false);
    assert_eq!(second["pageInfo"]["hasPreviousPage"], true);

    let bad = app
        .gql("{ events(after: \"xyz\") { edges { cursor } } }", json!({}))
        .await;
    assert_eq!(error_code(&bad), "invalid_cursor");
    let big = app
        .gql("{ events(first: 1000) { edges { cursor } } }", json!({}))
        .await;
    assert_eq!(error_code(&big), "invalid_page_size");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_book_release_and_customer_views() {
    let app = spawn_system().await;
    let event = app.create_grid_event(2, 5, 600).await;
    let kept = app.hold(&event, "cara", &[0, 1]).await["data"]["holdSeats"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dropped = app.hold(&event, "cara", &[2]).await["data"]["holdSeats"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let cara = app.as_buyer("cara");
    let book = "mutation($h: UUID!) { bookHold(holdId: $h) { id status } }";
    // Cara buys through an order; booking without payment is the organizer's (a comp).
    let own = cara.gql(book, json!({"h": kept})).await;
    assert_eq!(error_code(&own), "forbidden");
    let olga = app.as_organizer();
    let booked = olga.data(book, json!({"h": kept})).await;
    assert_eq!(booked["bookHold"]["status"], "BOOKED");
    // Booking twice is idempotent.
    let again = olga.data(book, json!({"h": kept})).await;
    assert_eq!(again["bookHold"]["status"], "BOOKED");
    let released = cara
        .data(
            "mutation($h: UUID!) { releaseHold(holdId: $h) { status } }",
            json!({"h": dropped}),
        )
        .await;
    assert_eq!(released["releaseHold"]["status"], "RELEASED");

    assert_eq!(app.wait_for_read_side(&event).await, "BBAAAAAAAA");
    let data = cara
        .data(
            "query($h: UUID!, $e: UUID!) {
               hold(id: $h) { id status customerId seats { seatId } event { id } }
               customer {
                 id holds(eventId: $e) { id status } bookings { id status totalCents } } }",
            json!({"h": kept, "e": event}),
        )
        .await;
    assert_eq!(data["hold"]["status"], "BOOKED");
    assert_eq!(data["hold"]["event"]["id"], event.as_str());
    assert_eq!(data["hold"]["seats"], json!([{"seatId": 0}, {"seatId": 1}]));
    let holds = data["customer"]["holds"].as_array().unwrap();
    assert_eq!(holds.len(), 2);
    assert!(holds.contains(&json!({"id": dropped, "status": "RELEASED"})));
    assert_eq!(
        data["customer"]["bookings"],
        json!([{"id": kept, "status": "BOOKED", "totalCents": 10000}])
    );

    // An event's holds, paged; `live` keeps only those that keep their seats.
    let holds = "query($e: UUID!, $after: String, $live: Boolean) { event(id: $e) {
        holds(first: 1, after: $after, live: $live) { edges { node { id status } }
                                                      pageInfo { hasNextPage endCursor } } } }";
    let organizer = app.as_organizer();
    let first = organizer.data(holds, json!({"e": event})).await["event"]["holds"].clone();
    assert_eq!(first["edges"].as_array().unwrap().len(), 1);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let second = organizer
        .data(
            holds,
            json!({"e": event, "after": first["pageInfo"]["endCursor"]}),
        )
        .await["event"]["holds"]
        .clone();
    assert_eq!(second["pageInfo"]["hasNextPage"], false);
    let live = organizer
        .data(holds, json!({"e": event, "live": true}))
        .await["event"]["holds"]
        .clone();
    assert_eq!(
        live["edges"],
        json!([{"node": {"id": kept, "status": "BOOKED"}}])
    );

    let nothing = cara
        .data(
            "query($id: UUID!) { hold(id: $id) { id } event(id: $id) { id } seatMap(eventId: $id) { seats } }",
            json!({"id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(
        nothing,
        json!({"hold": null, "event": null, "seatMap": null})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_seats_takes_the_best_available_from_the_focal_point_the_organizer_set() {
    let app = spawn_system().await;
    let created = app
        .as_organizer()
        .data(
            r#"mutation { createEvent(input: {name: "Best", layout: {rows: 2, cols: 6, priceCents: 100},
                 focalPoint: {rowIndex: 1, acrossPercent: 100}}) { id } }"#,
            json!({}),
        )
        .await;
    let event = created["createEvent"]["id"].as_str().unwrap().to_owned();
    let shown = app
        .data(
            "query($e: UUID!) { event(id: $e) { focalPoint { section rowIndex acrossPercent } } }",
            json!({"e": event}),
        )
        .await;
    assert_eq!(
        shown["event"]["focalPoint"],
        json!({"section": "Main", "rowIndex": 1, "acrossPercent": 100})
    );
    let best =
        "mutation($e: UUID!, $q: Int!) { holdSeats(eventId: $e, quantity: $q, together: true) {
                  seats { seatId row seat } } }";
    // The focal point is the last seat of the second row (seat id 11).
    let held = app
        .as_buyer("ann")
        .data(best, json!({"e": event, "q": 2}))
        .await;
    let seats = &held["holdSeats"]["seats"];
    assert_eq!(seats[0]["seatId"], 10, "{held}");
    assert_eq!(seats[1]["seatId"], 11, "{held}");

    let too_many = app
        .as_buyer("bob")
        .gql(best, json!({"e": event, "q": 11}))
        .await;
    assert_eq!(error_code(&too_many), "invalid_request", "{too_many}");
    for buyer in ["bob", "cid", "dee", "eli", "fay"] {
        app.as_buyer(buyer)
            .data(best, json!({"e": event, "q": 2}))
            .await;
    }
    let full = app
        .as_buyer("gus")
        .gql(best, json!({"e": event, "q": 1}))
        .await;
    assert_eq!(error_code(&full), "sold_out", "{full}");
    assert_eq!(full["errors"][0]["extensions"]["status"], 409);
}
