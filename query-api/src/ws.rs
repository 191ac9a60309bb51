//! GraphQL subscriptions over WebSocket, with the limits a public endpoint needs.
//!
//! Policy ([`WsLimits`]):
//! - `connection_init` must arrive within `init_timeout`, or the socket is closed (4408). Its
//!   payload may carry the bearer token ([`crate::auth::Identity::from_init_payload`]); a token
//!   that does not verify closes the socket (4401). Without one the connection is anonymous
//!   (seat updates are public; a hold's updates need the token).
//! - At most `max_subscriptions` live operations per connection: one more gets an `error`
//!   message with code `too_many_subscriptions` and is not started.
//! - At most `max_per_client` connections per client address: more are refused with 429 before
//!   the upgrade.
//! - The server pings every `keepalive`; a connection silent for three intervals (no pong, no
//!   message) is closed.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use booking::Authenticator;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};

use booking::Identity;

use crate::auth::identify_init_payload;
use crate::schema::SeatGridSchema;

/// Limits of the subscription endpoint.
#[derive(Debug, Clone, Copy)]
pub struct WsLimits {
    pub init_timeout: Duration,
    pub max_subscriptions: usize,
    pub max_per_client: usize,
    pub keepalive: Duration,
}

impl Default for WsLimits {
    fn default() -> Self {
        Self {
            init_timeout: Duration::from_secs(10),
            max_subscriptions: 20,
            max_per_client: 50,
            keepalive: Duration::from_secs(30),
        }
    }
}

/// Open connections per client address.
#[derive(Debug, Default)]
pub struct Connections(Mutex<HashMap<IpAddr, usize>>);

/// One client's connection, counted until dropped.
pub struct ConnectionSlot {
    connections: Arc<Connections>,
    client: IpAddr,
}

impl Connections {
    /// A slot for `client`, unless it already has `max` connections.
    pub fn open(self: &Arc<Self>, client: IpAddr, max: usize) -> Option<ConnectionSlot> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(client).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            connections: self.clone(),
            client,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.connections.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }))
}

/// What the guard makes of one message from the client.
enum Verdict {
    Pass,
    /// Refuse this operation with an error message to the client.
    Refuse(Message),
}

/// Counts live operations (graphql-transport-ws `subscribe`/`complete`, graphql-ws
/// `start`/`stop`).
struct Guard {
    live: HashSet<String>,
    max: usize,
    init_seen: bool,
}

impl Guard {
    fn inspect(&mut self, text: &str) -> Verdict {
        let Ok(msg) = serde_json::from_str::<Value>(text) else {
            return Verdict::Pass; // the protocol layer answers malformed messages itself
        };
        let id = msg.get("id").and_then(Value::as_str).unwrap_or_default();
        match msg.get("type").and_then(Value::as_str) {
            Some("connection_init") => self.init_seen = true,
            Some("subscribe" | "start") => {
                if !self.live.contains(id) && self.live.len() >= self.max {
                    let error = json!({
                        "type": "error",
                        "id": id,
                        "payload": [{
                            "message": format!("at most {} subscriptions per connection", self.max),
                            "extensions": {"code": "too_many_subscriptions"},
                        }],
                    });
                    return Verdict::Refuse(Message::Text(error.to_string().into()));
                }
                self.live.insert(id.to_owned());
            }
            Some("complete" | "stop") => {
                self.live.remove(id);
            }
            _ => {}
        }
        Verdict::Pass
    }
}

/// Serves one upgraded connection until either side ends it.
pub async fn serve(
    socket: WebSocket,
    schema: SeatGridSchema,
    protocol: GraphQLProtocol,
    auth: Arc<Authenticator>,
    limits: WsLimits,
    _slot: ConnectionSlot,
) {
    let (mut sink, mut inbound) = socket.split();
    let (out_tx, mut out_rx) = futures::channel::mpsc::channel::<Message>(64);
    // One writer: the GraphQL session's answers, the guard's refusals and keepalive pings.
    let writer = tokio::spawn(async move {
        let mut ping = tokio::time::interval(limits.keepalive);
        ping.tick().await;
        loop {
            tokio::select! {
                next = out_rx.next() => match next {
                    Some(msg) => {
                        let closing = matches!(msg, Message::Close(_));
                        if sink.send(msg).await.is_err() || closing {
                            break;
                        }
                    }
                    None => break,
                },
                _ = ping.tick() => {
                    if sink.send(Message::Ping(Default::default())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sink.close().await;
    });
    let mut refusals = out_tx.clone();
    let (in_tx, in_rx) = futures::channel::mpsc::channel::<Result<Message, axum::Error>>(16);
    // The reader: enforces the init timeout, the idle timeout and the subscription cap.
    let reader = tokio::spawn(async move {
        let mut in_tx = in_tx;
        let mut guard = Guard {
            live: HashSet::new(),
            max: limits.max_subscriptions,
            init_seen: false,
        };
        let started = tokio::time::Instant::now();
        loop {
            let wait = if guard.init_seen {
                limits.keepalive * 3
            } else {
                limits.init_timeout.saturating_sub(started.elapsed())
            };
            let next = match tokio::time::timeout(wait, inbound.next()).await {
                Ok(Some(next)) => next,
                Ok(None) => break,
                Err(_) => {
                    let (code, why) = if guard.init_seen {
                        (4400, "idle for too long")
                    } else {
                        (4408, "connection_init not received in time")
                    };
                    let _ = refusals.send(close(code, why)).await;
                    break;
                }
            };
            if let Ok(Message::Text(text)) = &next {
                if let Verdict::Refuse(msg) = guard.inspect(text) {
                    if refusals.send(msg).await.is_err() {
                        break;
                    }
                    continue;
                }
            }
            if in_tx.send(next).await.is_err() {
                break;
            }
        }
    });
    let out = out_tx.sink_map_err(|_| ());
    let on_init = move |payload: Value| async move {
        match identify_init_payload(&auth, &payload) {
            Identity::Invalid(why) => Err(async_graphql::Error::new(why)),
            identity => {
                let mut data = Data::default();
                data.insert(identity);
                Ok(data)
            }
        }
    };
    GraphQLWebSocket::new_with_pair(out, in_rx, schema, protocol)
        .on_connection_init(on_init)
        .keepalive_timeout(limits.keepalive * 3)
        .serve()
        .await;
    reader.abort();
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_cap_then_one_more_subscription_is_refused_until_one_completes() {
        let mut guard = Guard {
            live: HashSet::new(),
            max: 2,
            init_seen: false,
        };
        let sub = |id: &str| format!(r#"{{"type":"subscribe","id":"{id}","payload":{{}}}}"#);
        assert!(matches!(guard.inspect(&sub("1")), Verdict::Pass));
        assert!(matches!(guard.inspect(&sub("2")), Verdict::Pass));
        assert!(matches!(guard.inspect(&sub("3")), Verdict::Refuse(_)));
        guard.inspect(r#"{"type":"complete","id":"1"}"#);
        assert!(matches!(guard.inspect(&sub("3")), Verdict::Pass));
    }

    #[test]
    fn given_a_client_at_its_limit_then_another_connection_waits_for_one_to_close() {
        let connections = Arc::new(Connections::default());
        let client: IpAddr = [10, 0, 0, 1].into();
        let first = connections.open(client, 1).unwrap();
        assert!(connections.open(client, 1).is_none());
        assert!(connections.open([10, 0, 0, 2].into(), 1).is_some());
        drop(first);
        assert!(connections.open(client, 1).is_some());
    }
}
