//! Live updates for subscriptions: one Redis pub/sub connection per process, fanned out in memory.
//!
//! Policy: projectors publish every committed change on Redis channels (see `projections::cache`),
//! so every query-api process sees every change, whichever process projected it. A subscriber that
//! falls too far behind skips ahead (it is told so by a `Lagged` receive) rather than slowing the
//! others. When the Redis connection drops, it is re-established with the read side's reconnect
//! backoff ([`projections::backoff`]), and every subscriber is told to resynchronise
//! ([`LiveMessage::is_resync`]): whatever was published meanwhile never arrived.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast;

/// One message from a channel.
#[derive(Debug, Clone)]
pub struct LiveMessage {
    pub channel: String,
    pub payload: String,
}

#[derive(Clone)]
pub struct LiveUpdates {
    sender: broadcast::Sender<Arc<LiveMessage>>,
}

impl LiveMessage {
    /// Not a change: updates may have been missed, so every subscriber reads the current state.
    pub fn resync() -> Self {
        Self {
            channel: String::new(),
            payload: String::new(),
        }
    }

    pub fn is_resync(&self) -> bool {
        self.channel.is_empty()
    }
}

impl LiveUpdates {
    /// Subscribes to every channel matching `pattern` (failing if Redis cannot be reached now),
    /// then forwards messages in the background for as long as the process runs.
    /// `redis_url` may name a Redis Cluster's nodes ([`projections::redis_conn`]): a cluster
    /// delivers classic pub/sub to every node, so one node is subscribed at a time, and a lost
    /// node's subscription moves to the next.
    pub async fn start(redis_url: &str, pattern: String) -> Result<Self, redis::RedisError> {
        let clients = projections::redis_conn::RedisTarget::parse(redis_url)
            .nodes()
            .into_iter()
            .map(redis::Client::open)
            .collect::<Result<Vec<_>, _>>()?;
        let mut node = 0;
        let first = loop {
            match subscribe_to(&clients[node], &pattern).await {
                Ok(p) => break p,
                Err(e) if node + 1 == clients.len() => return Err(e),
                Err(_) => node += 1,
            }
        };
        let (sender, _) = broadcast::channel(16_384);
        let forward = sender.clone();
        tokio::spawn(async move {
            let mut pubsub = Some(first);
            let mut delays = projections::backoff::reconnect_delays();
            loop {
                if let Some(mut connected) = pubsub.take() {
                    delays = projections::backoff::reconnect_delays();
                    let mut messages = connected.on_message();
                    while let Some(msg) = messages.next().await {
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        // No receivers is fine: nobody is subscribed right now.
                        let _ = forward.send(Arc::new(LiveMessage {
                            channel: msg.get_channel_name().to_owned(),
                            payload,
                        }));
                    }
                    tracing::warn!("Redis pub/sub connection closed; reconnecting");
                    node = (node + 1) % clients.len();
                }
                tokio::time::sleep(delays.next().unwrap_or(Duration::from_secs(5))).await;
                match subscribe_to(&clients[node], &pattern).await {
                    Ok(p) => {
                        pubsub = Some(p);
                        let _ = forward.send(Arc::new(LiveMessage::resync()));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot subscribe to live updates");
                        node = (node + 1) % clients.len();
                    }
                }
            }
        });
        Ok(Self { sender })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveMessage>> {
        self.sender.subscribe()
    }
}

async fn subscribe_to(
    client: &redis::Client,
    pattern: &str,
) -> Result<redis::aio::PubSub, redis::RedisError> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.psubscribe(pattern).await?;
    Ok(pubsub)
}
