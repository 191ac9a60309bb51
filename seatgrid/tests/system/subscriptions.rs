//! Subscriptions over graphql-transport-ws: seat changes as they are projected, and a hold's
//! status until it ends (including an expiry nobody wrote yet).

use serde_json::json;

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
    app.data(
        "mutation($h: UUID!) { bookHold(holdId: $h, customerId: \"gus\") { status } }",
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
        .subscribe_at(
            &same_path,
            "subscription($h: UUID!) { hold(id: $h) { id status } }",
            json!({"h": hold}),
        )
        .await;
    assert_eq!(sub.next_data().await["hold"]["status"], "HELD");
    app.data(
        "mutation($h: UUID!) { bookHold(holdId: $h, customerId: \"hal\") { status } }",
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
        .subscribe(
            "subscription($h: UUID!) { hold(id: $h) { status } }",
            json!({"h": uuid::Uuid::new_v4()}),
        )
        .await;
    let msg = sub.next_message().await;
    let errors = subscription_errors(&msg);
    assert_eq!(errors[0]["extensions"]["code"], "hold_not_found", "{msg}");
}

/// The errors of a subscription's `error` message (or of a `next` carrying errors).
fn subscription_errors(msg: &serde_json::Value) -> serde_json::Value {
    if msg["type"] == "error" {
        msg["payload"].clone()
    } else {
        msg["payload"]["errors"].clone()
    }
}
