//! `spawn_system()`: the whole system on a free port over a fresh database and its own Redis key
//! prefix, plus a small GraphQL client (HTTP and graphql-transport-ws).

use std::future::Future;
use std::time::{Duration, Instant};

use booking::Role;
use command_api::CommandApiConfig;
use futures::{SinkExt, StreamExt};
use projections::RunnerConfig;
use seatgrid::system::{System, SystemConfig};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

#[derive(Clone)]
pub struct TestSystem {
    pub address: String,
    pub ws_url: String,
    pub client: reqwest::Client,
    pub prefix: String,
    /// `Bearer <token>` sent with every GraphQL operation and subscription, if any.
    pub authorization: Option<String>,
}

/// The organizer who creates the tests' events.
pub const ORGANIZER: &str = "olga";

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
    spawn_on(pool, redis_url(), clickhouse).await
}

/// The system with these WebSocket limits.
pub async fn spawn_with_ws(ws: query_api::WsLimits) -> TestSystem {
    let (_, pool) = migrations::testing::fresh_database(6).await;
    spawn_full(pool, redis_url(), None, ws, None).await
}

/// The system taking payments from the provider at `provider_url`, whose webhooks are signed
/// with `secret`.
pub async fn spawn_with_payments(provider_url: String, secret: &str) -> TestSystem {
    let (_, pool) = migrations::testing::fresh_database(8).await;
    let payments = Payments {
        provider_url,
        secret: secret.to_owned(),
    };
    spawn_full(
        pool,
        redis_url(),
        None,
        query_api::WsLimits::default(),
        Some(payments),
    )
    .await
}

/// Where a test system takes payments.
pub struct Payments {
    pub provider_url: String,
    pub secret: String,
}

/// The system over `pool` (a test's own, say with tight time limits) and the Redis at `redis`.
pub async fn spawn_on(
    pool: sqlx::PgPool,
    redis: String,
    clickhouse: Option<analytics::ClickHouseConfig>,
) -> TestSystem {
    spawn_full(
        pool,
        redis,
        clickhouse,
        query_api::WsLimits::default(),
        None,
    )
    .await
}

async fn spawn_full(
    pool: sqlx::PgPool,
    redis: String,
    clickhouse: Option<analytics::ClickHouseConfig>,
    ws: query_api::WsLimits,
    payments: Option<Payments>,
) -> TestSystem {
    let prefix = format!("sgtest:{}:", uuid::Uuid::new_v4().simple());
    let (payment_provider_url, secret) = match payments {
        Some(p) => (Some(p.provider_url), Some(p.secret)),
        None => (None, None),
    };
    let config = SystemConfig {
        ws,
        command: CommandApiConfig {
            sweep_interval: Some(Duration::from_millis(300)),
            payments_webhook_secret: secret.map(|s| std::sync::Arc::new(s.into())),
            // The pages' browser tests sign in as people do on a developer machine.
            dev_login: true,
            ..command_api::testing::config()
        },
        redis_url: redis,
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
        payment_provider_url,
        roles: seatgrid::roles::Roles::ALL,
        leadership: seatgrid::leadership::LeaderConfig::default(),
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
        authorization: None,
    }
}

impl TestSystem {
    /// The same system, called as `sub` with `role`.
    pub fn as_(&self, sub: &str, role: Role) -> Self {
        Self {
            authorization: Some(command_api::testing::bearer(sub, role)),
            ..self.clone()
        }
    }

    pub fn as_buyer(&self, sub: &str) -> Self {
        self.as_(sub, Role::Buyer)
    }

    /// As [`ORGANIZER`], who created the events of [`Self::create_grid_event`].
    pub fn as_organizer(&self) -> Self {
        self.as_(ORGANIZER, Role::Organizer)
    }

    pub fn as_admin(&self) -> Self {
        self.as_("root", Role::Admin)
    }

    /// The same system, called without a token.
    pub fn anonymous(&self) -> Self {
        Self {
            authorization: None,
            ..self.clone()
        }
    }

    /// Runs a GraphQL operation over HTTP; returns the whole response body.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let mut request = self.client.post(format!("{}/graphql", self.address));
        if let Some(auth) = &self.authorization {
            request = request.header("authorization", auth);
        }
        request
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

    /// Creates a grid event as [`ORGANIZER`].
    pub async fn create_grid_event(&self, rows: u32, cols: u32, hold_seconds: u32) -> String {
        let data = self
            .as_organizer()
            .data(
                "mutation($input: CreateEventInput!) { createEvent(input: $input) { id } }",
                json!({"input": {"name": "Test night", "holdSeconds": hold_seconds,
                    "layout": {"rows": rows, "cols": cols, "priceCents": 5000}}}),
            )
            .await;
        data["createEvent"]["id"].as_str().unwrap().to_owned()
    }

    /// Holds seats as the buyer `customer`; returns the whole response body.
    pub async fn hold(&self, event_id: &str, customer: &str, seat_ids: &[u32]) -> Value {
        let seats: Vec<Value> = seat_ids.iter().map(|s| json!({"seatId": s})).collect();
        self.as_buyer(customer)
            .gql(
                "mutation($e: UUID!, $s: [SeatInput!]!) {
                   holdSeats(eventId: $e, seats: $s) { id status expiresAt } }",
                json!({"e": event_id, "s": seats}),
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
        subscribe_to(url, self.authorization.as_deref(), query, variables).await
    }
}

/// A graphql-transport-ws subscription at `url`, with `authorization` (`Bearer ...`) in its
/// `connection_init`.
pub async fn subscribe_to(
    url: &str,
    authorization: Option<&str>,
    query: &str,
    variables: Value,
) -> Subscription {
    let (mut ws, _) = connect_ws(url).await;
    let init = match authorization {
        Some(auth) => json!({"type": "connection_init", "payload": {"Authorization": auth}}),
        None => json!({"type": "connection_init"}),
    };
    ws.send(Message::text(init.to_string())).await.unwrap();
    let mut sub = Subscription { ws };
    assert_eq!(sub.next_message().await["type"], "connection_ack");
    sub.start("1", query, variables).await;
    sub
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A graphql-transport-ws connection to `url`, before `connection_init`.
pub async fn connect_ws(
    url: &str,
) -> (
    Ws,
    tokio_tungstenite::tungstenite::handshake::client::Response,
) {
    tokio_tungstenite::connect_async(
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
    .expect("websocket connects")
}

/// The close code the server ends `ws` with (within 15 s), if it sends one.
pub async fn closed_with(ws: &mut Ws) -> Option<u16> {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("the server answers within 15 s");
        match next {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Some(0),
        }
    }
}

pub struct Subscription {
    ws: Ws,
}

impl Subscription {
    /// Starts another operation with `id` on this connection.
    pub async fn start(&mut self, id: &str, query: &str, variables: Value) {
        self.ws
            .send(Message::text(
                json!({"id": id, "type": "subscribe",
                       "payload": {"query": query, "variables": variables}})
                .to_string(),
            ))
            .await
            .unwrap();
    }

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
