//! Subscriptions over graphql-transport-ws: seat changes as they are projected, and a hold's
//! status until it ends (including an expiry nobody wrote yet).

use futures::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::spawn_system;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seat_updates_push_every_status_change() {
    let app = spawn_system().await;
    let event = app.create_grid_event(1, 10, 600).await;
    app.wait_for_read_side(&event).await;
    let mut sub = app
        .subscribe(
            "subscription($e: UUID!) { seatUpdates(eventId: $e) { eventId seatId status version } }",
            json!({"e": event}),
        )
        .await;
    // Give the server a moment to register the subscription before writing.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let hold = app.hold(&event, "gus", &[3, 4]).await["data"]["holdSeats"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let d = sub.next_data().await;
        assert_eq!(d["seatUpdates"]["eventId"], event.as_str());
        seen.push((
            d["seatUpdates"]["seatId"].clone(),
            d["seatUpdates"]["status"].clone(),
        ));
    }
    assert_eq!(
        seen,
        vec![(json!(3), json!("HELD")), (json!(4), json!("HELD"))]
    );
    app.as_organizer()
        .data(
            "mutation($h: UUID!) { bookHold(holdId: $h) { status } }",
            json!({"h": hold}),
        )
        .await;
    let d = sub.next_data().await;
    assert_eq!(d["seatUpdates"]["status"], "BOOKED");
    assert!(d["seatUpdates"]["version"].as_i64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_subscription_follows_a_hold_until_it_is_booked() {
    let app = spawn_system().await;
    let event = app.create_grid_event(1, 10, 600).await;
    let hold = app.hold(&event, "hal", &[0]).await["data"]["holdSeats"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Subscriptions are also served on /graphql itself (a WebSocket upgrade there).
    let same_path = app.ws_url.trim_end_matches("/ws").to_owned();
    let mut sub = app
        .as_buyer("hal")
        .subscribe_at(
            &same_path,
            "subscription($h: UUID!) { hold(id: $h) { id status } }",
            json!({"h": hold}),
        )
        .await;
    assert_eq!(sub.next_data().await["hold"]["status"], "HELD");
    app.as_organizer()
        .data(
            "mutation($h: UUID!) { bookHold(holdId: $h) { status } }",
            json!({"h": hold}),
        )
        .await;
    assert_eq!(sub.next_data().await["hold"]["status"], "BOOKED");
    assert_eq!(sub.next_message().await["type"], "complete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_subscription_sees_the_hold_expire() {
    let app = spawn_system().await;
    let event = app.create_grid_event(1, 10, 2).await;
    let hold = app.hold(&event, "ivy", &[5]).await["data"]["holdSeats"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut sub = app
        .as_buyer("ivy")
        .subscribe(
            "subscription($h: UUID!) { hold(id: $h) { id status expiresAt } }",
            json!({"h": hold}),
        )
        .await;
    assert_eq!(sub.next_data().await["hold"]["status"], "HELD");
    assert_eq!(sub.next_data().await["hold"]["status"], "EXPIRED");
    assert_eq!(sub.next_message().await["type"], "complete");
    // The sweeper writes HoldExpired soon after, and the seat is free in the read model too.
    assert_eq!(app.wait_for_read_side(&event).await, "AAAAAAAAAA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_to_an_unknown_event_or_hold_is_an_error_with_a_code() {
    let app = spawn_system().await;
    let mut sub = app
        .subscribe(
            "subscription($e: UUID!) { seatUpdates(eventId: $e) { seatId } }",
            json!({"e": uuid::Uuid::new_v4()}),
        )
        .await;
    let msg = sub.next_message().await;
    let errors = subscription_errors(&msg);
    assert_eq!(errors[0]["extensions"]["code"], "event_not_found", "{msg}");

    let mut sub = app
        .as_buyer("ivy")
        .subscribe(
            "subscription($h: UUID!) { hold(id: $h) { status } }",
            json!({"h": uuid::Uuid::new_v4()}),
        )
        .await;
    let msg = sub.next_message().await;
    let errors = subscription_errors(&msg);
    assert_eq!(errors[0]["extensions"]["code"], "hold_not_found", "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holds_updates_are_for_its_customer_and_its_organizer_only() {
    let app = spawn_system().await;
    let event = app.create_grid_event(1, 10, 600).await;
    let hold = app.hold(&event, "jo", &[1]).await["data"]["holdSeats"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let query = "subscription($h: UUID!) { hold(id: $h) { status } }";
    for (who, code) in [
        (app.anonymous(), "unauthenticated"),
        (app.as_buyer("kim"), "not_hold_owner"),
    ] {
        let mut sub = who.subscribe(query, json!({"h": hold})).await;
        let msg = sub.next_message().await;
        assert_eq!(
            subscription_errors(&msg)[0]["extensions"]["code"],
            code,
            "{msg}"
        );
    }
    let mut sub = app
        .as_organizer()
        .subscribe(query, json!({"h": hold}))
        .await;
    assert_eq!(sub.next_data().await["hold"]["status"], "HELD");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_limits_hold() {
    let app = spawn_system().await;
    let event = app.create_grid_event(1, 10, 600).await;
    app.wait_for_read_side(&event).await;
    // A token that does not verify closes the connection at connection_init.
    let (mut ws, _) = crate::helpers::connect_ws(&app.ws_url).await;
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {"Authorization": "Bearer forged"}})
            .to_string(),
    ))
    .await
    .unwrap();
    assert!(
        crate::helpers::closed_with(&mut ws).await.is_some(),
        "refused at init"
    );
    // At most 20 live subscriptions per connection; the 21st is refused with a code.
    let query = "subscription($e: UUID!) { seatUpdates(eventId: $e) { seatId } }";
    let mut sub = app.subscribe(query, json!({"e": event})).await;
    for id in 2..=21 {
        sub.start(&id.to_string(), query, json!({"e": event})).await;
    }
    let refused = sub.next_message().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "21");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "too_many_subscriptions"
    );
}

/// The errors of a subscription's `error` message (or of a `next` carrying errors).
fn subscription_errors(msg: &serde_json::Value) -> serde_json::Value {
    if msg["type"] == "error" {
        msg["payload"].clone()
    } else {
        msg["payload"]["errors"].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_subscriber_that_missed_updates_resynchronises_from_the_read_model() {
    use crate::own_redis::OwnRedis;
    use std::time::{Duration, Instant};

    let redis = OwnRedis::start();
    let (_, pool) = migrations::testing::fresh_database(6).await;
    let app = crate::helpers::spawn_on(pool, redis.url(), None).await;
    let event = app.create_grid_event(1, 5, 600).await;
    app.wait_for_read_side(&event).await;
    let mut sub = app
        .subscribe(
            "subscription($e: UUID!) { seatUpdates(eventId: $e) { seatId status version } }",
            json!({"e": event}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The server's pub/sub connection is cut over and over while a hold is projected: its
    // publication reaches nobody, as when Redis restarts or drops a slow subscriber.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let cutting = Instant::now();
    let hold = tokio::spawn({
        let (app, event) = (app.clone(), event.clone());
        async move { app.hold(&event, "ivy", &[2]).await }
    });
    loop {
        let _: redis::RedisResult<i64> = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query_async(&mut conn)
            .await;
        let projected =
            hold.is_finished() && app.seat_map(&event).await.as_deref() == Some("AAHAA");
        if projected || cutting.elapsed() > Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(hold.await.unwrap()["data"]["holdSeats"]["status"], "HELD");

    // Once connected again, the subscriber is brought up to date: seat 2 is pushed as held.
    let mut statuses = std::collections::HashMap::new();
    while statuses.get(&2) != Some(&json!("HELD")) {
        let d = sub.next_data().await;
        let seat = d["seatUpdates"]["seatId"].as_u64().unwrap();
        statuses.insert(seat, d["seatUpdates"]["status"].clone());
    }
    // And live updates continue after the resynchronised version (the rest of the resync's
    // seats come first, each at that version).
    app.hold(&event, "ivy", &[4]).await;
    let mut last_version = 0;
    loop {
        let d = sub.next_data().await;
        let version = d["seatUpdates"]["version"].as_i64().unwrap();
        assert!(version >= last_version, "versions never go back");
        last_version = version;
        if d["seatUpdates"]["seatId"] == 4 && d["seatUpdates"]["status"] == "HELD" {
            break;
        }
    }
}
