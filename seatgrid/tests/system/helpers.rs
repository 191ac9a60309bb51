//! `spawn_system()`: the whole system on a free port over a fresh database and its own Redis key
//! prefix, plus a small GraphQL client (HTTP and graphql-transport-ws).

use std::future::Future;
use std::time::{Duration, Instant};

use command_api::CommandApiConfig;
use futures::{SinkExt, StreamExt};
use projections::RunnerConfig;
use seatgrid::system::{System, SystemConfig};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub struct TestSystem {
    pub address: String,
    pub ws_url: String,
    pub client: reqwest::Client,
    pub prefix: String,
}

pub async fn spawn_system() -> TestSystem {
    spawn(None).await
}

/// The system with analytics on, streaming into its own ClickHouse database.
pub async fn spawn_system_with_analytics() -> TestSystem {
    let url = analytics::testing::server_url();
    spawn(Some(analytics::testing::fresh_config(&url))).await
}

async fn spawn(clickhouse: Option<analytics::ClickHouseConfig>) -> TestSystem {
    let (_, pool) = migrations::testing::fresh_database(6).await;
    let prefix = format!("sgtest:{}:", uuid::Uuid::new_v4().simple());
    let config = SystemConfig {
        command: CommandApiConfig {
            sweep_interval: Some(Duration::from_millis(300)),
            ..command_api::testing::config()
        },
        redis_url: redis_url(),
        redis_prefix: prefix.clone(),
        runner: RunnerConfig {
            poll_interval: Duration::from_millis(200),
            ..RunnerConfig::default()
        },
        clickhouse,
        ingest: analytics::IngestConfig {
            max_delay: Duration::from_millis(200),
            ..analytics::IngestConfig::default()
        },
    };
    let system = System::build(config, pool.clone(), None)
        .await
        .expect("system builds");
    let addr = system.local_addr();
    tokio::spawn(system.run_until_stopped(std::future::pending()));
    TestSystem {
        address: format!("http://{addr}"),
        ws_url: format!("ws://{addr}/graphql/ws"),
        client: reqwest::Client::new(),
        prefix,
    }
}

impl TestSystem {
    /// Runs a GraphQL operation over HTTP; returns the whole response body.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        self.client
            .post(format!("{}/graphql", self.address))
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .expect("graphql request")
            .json()
            .await
            .expect("graphql answers JSON")
    }

    /// Runs an operation that must succeed; returns `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let body = self.gql(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    pub async fn rest_seat_map(&self, event_id: &str) -> String {
        let body: Value = self
            .client
            .get(format!(
                "{}/api/events/{event_id}/seats?consistency=strong",
                self.address
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["seats"].as_str().expect("seats").to_owned()
    }

    pub async fn create_grid_event(&self, rows: u32, cols: u32, hold_seconds: u32) -> String {
        let data = self
            .data(
                "mutation($input: CreateEventInput!) { createEvent(input: $input) { id } }",
                json!({"input": {"name": "Test night", "holdSeconds": hold_seconds,
                    "layout": {"rows": rows, "cols": cols, "priceCents": 5000}}}),
            )
            .await;
        data["createEvent"]["id"].as_str().unwrap().to_owned()
    }

    pub async fn hold(&self, event_id: &str, customer: &str, seat_ids: &[u32]) -> Value {
        let seats: Vec<Value> = seat_ids.iter().map(|s| json!({"seatId": s})).collect();
        self.gql(
            "mutation($e: UUID!, $c: String!, $s: [SeatInput!]!) {
               holdSeats(eventId: $e, customerId: $c, seats: $s) { id status expiresAt } }",
            json!({"e": event_id, "c": customer, "s": seats}),
        )
        .await
    }

    /// The read side's seat map string (null while the event is not projected).
    pub async fn seat_map(&self, event_id: &str) -> Option<String> {
        let data = self
            .data(
                "query($e: UUID!) { seatMap(eventId: $e) { seats } }",
                json!({"e": event_id}),
            )
            .await;
        data["seatMap"]["seats"].as_str().map(str::to_owned)
    }

    /// Waits until the read side's seat map equals the command side's.
    pub async fn wait_for_read_side(&self, event_id: &str) -> String {
        let truth = self.rest_seat_map(event_id).await;
        eventually(Duration::from_secs(10), || async {
            (self.seat_map(event_id).await.as_deref() == Some(truth.as_str())).then_some(())
        })
        .await;
        truth
    }

    pub async fn subscribe(&self, query: &str, variables: Value) -> Subscription {
        self.subscribe_at(&self.ws_url, query, variables).await
    }

    /// A graphql-transport-ws subscription at `url`.
    pub async fn subscribe_at(&self, url: &str, query: &str, variables: Value) -> Subscription {
        let (mut ws, _) = tokio_tungstenite::connect_async(
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
                .map(|mut r| {
                    r.headers_mut().insert(
                        "Sec-WebSocket-Protocol",
                        "graphql-transport-ws".parse().unwrap(),
                    );
                    r
                })
                .unwrap(),
        )
        .await
        .expect("websocket connects");
        ws.send(Message::text(
            json!({"type": "connection_init"}).to_string(),
        ))
        .await
        .unwrap();
        let mut sub = Subscription { ws };
        assert_eq!(sub.next_message().await["type"], "connection_ack");
        sub.ws
            .send(Message::text(
                json!({"id": "1", "type": "subscribe",
                       "payload": {"query": query, "variables": variables}})
                .to_string(),
            ))
            .await
            .unwrap();
        sub
    }
}

pub struct Subscription {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Subscription {
    /// The next protocol message (pings answered), within 15 s.
    pub async fn next_message(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(15), self.ws.next())
                .await
                .expect("a subscription message within 15 s")
                .expect("socket open")
                .expect("socket readable");
            match msg {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == "ping" {
                        self.ws
                            .send(Message::text(json!({"type": "pong"}).to_string()))
                            .await
                            .unwrap();
                        continue;
                    }
                    return v;
                }
                Message::Close(_) => return json!({"type": "closed"}),
                _ => continue,
            }
        }
    }

    /// The next `next` payload's data (panics on anything else).
    pub async fn next_data(&mut self) -> Value {
        let msg = self.next_message().await;
        assert_eq!(msg["type"], "next", "expected data, got {msg}");
        msg["payload"]["data"].clone()
    }
}

/// Polls `check` until it returns `Some`, failing the test after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < within,
            "condition not met within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `extensions.code` of the first error.
pub fn error_code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
        .to_owned()
}
