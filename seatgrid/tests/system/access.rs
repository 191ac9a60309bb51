//! Who may run which GraphQL operation: the 401/403 matrix over every query field, mutation and
//! subscription that acts for someone, plus the request limits of `/graphql`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_system, spawn_with_ws, TestSystem};

/// `(name, query, variables)` of every operation that needs a caller.
fn protected(event: &str, hold: &str) -> Vec<(&'static str, String, Value)> {
    let e = json!({"e": event});
    let h = json!({"h": hold});
    vec![
        (
            "hold",
            "query($h: UUID!) { hold(id: $h) { id } }".into(),
            h.clone(),
        ),
        ("customer", "{ customer { id } }".into(), json!({})),
        (
            "event.holds",
            "query($e: UUID!) { event(id: $e) { holds { edges { node { id } } } } }".into(),
            e.clone(),
        ),
        (
            "analytics.conversion",
            "query($e: UUID!) { analytics { conversion(eventId: $e) { holds } } }".into(),
            e.clone(),
        ),
        (
            "analytics.sql",
            "{ analytics { sql(query: \"SELECT 1\") } }".into(),
            json!({}),
        ),
        (
            "createEvent",
            "mutation { createEvent(input: {name: \"x\", layout: {rows: 1, cols: 1}}) { id } }"
                .into(),
            json!({}),
        ),
        (
            "holdSeats",
            "mutation($e: UUID!) { holdSeats(eventId: $e, seats: [{seatId: 5}]) { id } }".into(),
            e.clone(),
        ),
        (
            "bookHold",
            "mutation($h: UUID!) { bookHold(holdId: $h) { id } }".into(),
            h.clone(),
        ),
        (
            "releaseHold",
            "mutation($h: UUID!) { releaseHold(holdId: $h) { id } }".into(),
            h,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_that_acts_for_someone_needs_a_token_and_the_right() {
    let app = spawn_system().await;
    let event = app.create_grid_event(1, 10, 600).await;
    let hold = app.hold(&event, "alice", &[1]).await["data"]["holdSeats"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Reads of the hold come from the read model: let it get there first.
    crate::helpers::eventually(std::time::Duration::from_secs(5), || {
        let (app, event) = (app.clone(), event.clone());
        async move { (app.seat_map(&event).await?.as_bytes()[1] == b'H').then_some(()) }
    })
    .await;
    let forged = TestSystem {
        authorization: Some("Bearer forged.token.here".into()),
        ..app.clone()
    };
    for (name, query, vars) in protected(&event, &hold) {
        for who in [app.anonymous(), forged.clone()] {
            let body = who.gql(&query, vars.clone()).await;
            assert_eq!(error_code(&body), "unauthenticated", "{name}: {body}");
            assert_eq!(body["errors"][0]["extensions"]["status"], 401, "{name}");
        }
    }
    // A buyer who is not alice: someone else's hold, purchases, the organizer's views.
    let mallory = app.as_buyer("mallory");
    for (name, code) in [
        ("hold", "not_hold_owner"),
        ("event.holds", "forbidden"),
        ("analytics.sql", "forbidden"),
        ("createEvent", "forbidden"),
        ("bookHold", "forbidden"),
        ("releaseHold", "not_hold_owner"),
    ] {
        let (_, query, vars) = protected(&event, &hold)
            .into_iter()
            .find(|(n, _, _)| *n == name)
            .unwrap();
        let body = mallory.gql(&query, vars).await;
        assert_eq!(error_code(&body), code, "{name}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["status"], 403, "{name}");
    }
    let others = mallory
        .gql("{ customer(id: \"alice\") { id } }", json!({}))
        .await;
    assert_eq!(error_code(&others), "forbidden");
    let own = mallory
        .data("{ customer { id holds { id } } }", json!({}))
        .await;
    assert_eq!(own["customer"]["id"], "mallory");
    // Public reads need nothing.
    let public = app
        .anonymous()
        .data(
            "query($e: UUID!) { events { edges { node { id } } } event(id: $e) { name } seatMap(eventId: $e) { seats } }",
            json!({"e": event}),
        )
        .await;
    assert_eq!(public["event"]["name"], "Test night");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_bodies_past_the_limit_are_413_before_anything_runs() {
    let app = spawn_system().await;
    let padding = " ".repeat(100_000);
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"query\": \"{{ events {{ pageInfo {{ hasNextPage }} }} }}{padding}\"}}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_that_never_says_connection_init_is_closed() {
    let app = spawn_with_ws(query_api::WsLimits {
        init_timeout: Duration::from_millis(500),
        ..query_api::WsLimits::default()
    })
    .await;
    let (mut ws, _) = crate::helpers::connect_ws(&app.ws_url).await;
    let started = std::time::Instant::now();
    let code = crate::helpers::closed_with(&mut ws).await;
    assert_eq!(code, Some(4408));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_client_are_capped() {
    let app = spawn_with_ws(query_api::WsLimits {
        max_per_client: 2,
        ..query_api::WsLimits::default()
    })
    .await;
    let _one = crate::helpers::connect_ws(&app.ws_url).await;
    let _two = crate::helpers::connect_ws(&app.ws_url).await;
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            app.ws_url.as_str(),
        )
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let third = tokio_tungstenite::connect_async(request).await;
    match third {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429)
        }
        other => panic!("a third connection from one client is refused, got {other:?}"),
    }
}
