//! One Redis server or a Redis Cluster, as `REDIS_URL` says.
//!
//! Policy: `REDIS_URL` names one server (`redis://127.0.0.1:6379`), or the seed nodes of a Redis
//! Cluster separated by commas (`redis://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003`, hosts
//! listed the way libpq lists them). In a cluster, the keys of one event share a hash slot (their
//! `{event}` tag) and each hold's keys are in one slot; a batch that spans slots goes as one
//! pipeline per slot, sent concurrently (nothing relied on atomicity across keys). Pub/sub uses
//! classic channels, which a cluster delivers to subscribers on every node. Redis stays a cache:
//! while a master fails over, its slots' commands fail and readers fall back to PostgreSQL.

use std::collections::HashMap;

use futures::future::try_join_all;
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo, Slot};
use redis::{ErrorKind, Pipeline, RedisError, RedisResult, Script, ServerErrorKind, Value};

/// Redis is a cache: a command that does not answer in [`RESPONSE_TIMEOUT`] fails, and the
/// reader falls back to PostgreSQL rather than wait for a stalled server.
pub const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// What `REDIS_URL` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    Single(String),
    /// Seed nodes of a cluster, one URL each.
    Cluster(Vec<String>),
}

impl RedisTarget {
    pub fn parse(url: &str) -> Self {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Self::Single(url.to_owned());
        };
        let end = rest.find('/').unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let (user, hosts) = match authority.rsplit_once('@') {
            Some((user, hosts)) => (format!("{user}@"), hosts),
            None => (String::new(), authority),
        };
        let nodes: Vec<String> = hosts
            .split(',')
            .map(|host| format!("{scheme}://{user}{host}{path}"))
            .collect();
        match <[String; 1]>::try_from(nodes) {
            Ok([one]) => Self::Single(one),
            Err(nodes) => Self::Cluster(nodes),
        }
    }

    /// Every node URL given (one for a single server).
    pub fn nodes(&self) -> Vec<String> {
        match self {
            Self::Single(url) => vec![url.clone()],
            Self::Cluster(nodes) => nodes.clone(),
        }
    }
}

/// A connection that reconnects by itself, to a server or a cluster.
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConn {
    pub async fn connect(url: &str) -> RedisResult<Self> {
        match RedisTarget::parse(url) {
            RedisTarget::Single(url) => {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_connection_timeout(Some(CONNECT_TIMEOUT));
                let client = redis::Client::open(url)?;
                Ok(Self::Single(
                    ConnectionManager::new_with_config(client, config).await?,
                ))
            }
            RedisTarget::Cluster(nodes) => {
                let client = redis::cluster::ClusterClient::builder(nodes)
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    // A cache fails fast; the reader falls back to PostgreSQL.
                    .retries(2)
                    .build()?;
                Ok(Self::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// An empty batch for this connection.
    pub fn batch(&self) -> Batch {
        Batch {
            cluster: matches!(self, Self::Cluster(_)),
            pipes: Vec::new(),
            by_slot: HashMap::new(),
        }
    }

    async fn query_pipe(&self, pipe: &Pipeline) -> RedisResult<Vec<Value>> {
        match self {
            Self::Single(c) => pipe.query_async(&mut c.clone()).await,
            Self::Cluster(c) => pipe.query_async(&mut c.clone()).await,
        }
    }

    /// Sends every pipeline of `batch` (concurrently); if a node no longer knows the scripts
    /// (restarted, flushed, a promoted replica), loads `scripts` and sends that pipeline again.
    /// The answers, per pipeline in [`Batch::item`]'s order.
    pub async fn send(&self, batch: &Batch, scripts: &[&Script]) -> RedisResult<Vec<Vec<Value>>> {
        try_join_all(batch.pipes.iter().map(|pipe| async move {
            match self.query_pipe(pipe).await {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    self.load_scripts(scripts).await?;
                    self.query_pipe(pipe).await
                }
                other => other,
            }
        }))
        .await
    }

    /// Sends `scripts` to the server (to every master of a cluster).
    pub async fn load_scripts(&self, scripts: &[&Script]) -> RedisResult<()> {
        for script in scripts {
            match self {
                Self::Single(c) => script.load_async(&mut c.clone()).await?,
                Self::Cluster(c) => script.load_async(&mut c.clone()).await?,
            };
        }
        Ok(())
    }

    /// Every key matching `pattern` (on every master of a cluster).
    pub async fn scan(&self, pattern: &str) -> RedisResult<Vec<String>> {
        let mut keys = Vec::new();
        match self {
            Self::Single(c) => {
                let mut c = c.clone();
                let mut iter =
                    redis::AsyncCommands::scan_match::<_, String>(&mut c, pattern).await?;
                while let Some(k) = futures::StreamExt::next(&mut iter).await {
                    keys.push(k?);
                }
            }
            Self::Cluster(c) => {
                let mut c = c.clone();
                for (host, port) in masters(&mut c).await? {
                    let mut cursor = 0u64;
                    loop {
                        let mut scan = redis::cmd("SCAN");
                        scan.arg(cursor)
                            .arg("MATCH")
                            .arg(pattern)
                            .arg("COUNT")
                            .arg(1000);
                        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host: host.clone(),
                            port,
                        });
                        let (next, found): (u64, Vec<String>) =
                            redis::from_redis_value(c.route_command(scan, route).await?)?;
                        keys.extend(found);
                        if next == 0 {
                            break;
                        }
                        cursor = next;
                    }
                }
            }
        }
        Ok(keys)
    }

    /// Reads several items in one round trip per slot: `push(i, pipe)` adds item `i`'s `n`
    /// commands (none ignored) to the pipeline of `routes[i]`'s slot. Each item's `n` answers.
    pub async fn read_each(
        &self,
        routes: &[String],
        n: usize,
        push: impl Fn(usize, &mut Pipeline),
    ) -> RedisResult<Vec<Vec<Value>>> {
        let mut batch = self.batch();
        let at: Vec<ItemAt> = routes
            .iter()
            .enumerate()
            .map(|(i, route)| {
                let (at, pipe) = batch.item_at(route);
                push(i, pipe);
                at
            })
            .collect();
        let all = self.send(&batch, &[]).await?;
        at.into_iter()
            .map(|at| answers(&all, at, n).map(<[Value]>::to_vec))
            .collect()
    }

    /// Deletes `keys` (slot by slot in a cluster).
    pub async fn del(&self, keys: &[String]) -> RedisResult<()> {
        for chunk in keys.chunks(500) {
            let mut batch = self.batch();
            for key in chunk {
                batch.item(key).del(key).ignore();
            }
            self.send(&batch, &[]).await?;
        }
        Ok(())
    }
}

/// The masters of a cluster, from `CLUSTER NODES`.
async fn masters(c: &mut ClusterConnection) -> RedisResult<Vec<(String, u16)>> {
    let nodes: String = redis::from_redis_value(
        c.route_command(
            redis::cmd("CLUSTER").arg("NODES").clone(),
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
        )
        .await?,
    )?;
    Ok(nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let (addr, flags) = (fields.get(1)?, fields.get(2)?);
            if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
                return None;
            }
            let (host, port) = addr.split('@').next()?.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect())
}

/// Commands grouped into one pipeline per hash slot (a single pipeline for one server).
pub struct Batch {
    cluster: bool,
    pipes: Vec<Pipeline>,
    by_slot: HashMap<Option<Slot>, usize>,
}

/// Where an item's answers are: its pipeline and the index of its first answer there.
#[derive(Debug, Clone, Copy)]
struct ItemAt {
    pipe: usize,
    first: usize,
}

impl Batch {
    /// The pipeline for commands on `key` (and any publish that goes with them).
    pub fn item(&mut self, key: &str) -> &mut Pipeline {
        self.item_at(key).1
    }

    /// Like [`Self::item`], also saying where the item's answers will be (commands not ignored).
    fn item_at(&mut self, key: &str) -> (ItemAt, &mut Pipeline) {
        let slot = self.cluster.then(|| Slot::for_key(key));
        let pipes = &mut self.pipes;
        let index = *self.by_slot.entry(slot).or_insert_with(|| {
            pipes.push(redis::pipe());
            pipes.len() - 1
        });
        let pipe = &mut self.pipes[index];
        let first = pipe.cmd_iter().count();
        (ItemAt { pipe: index, first }, pipe)
    }
}

/// `n` answers of the item at `at`.
fn answers(all: &[Vec<Value>], at: ItemAt, n: usize) -> Result<&[Value], RedisError> {
    all.get(at.pipe)
        .and_then(|pipe| pipe.get(at.first..at.first + n))
        .ok_or_else(|| (ErrorKind::Parse, "fewer answers than commands").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_is_one_server_and_a_host_list_is_a_cluster() {
        assert_eq!(
            RedisTarget::parse("redis://127.0.0.1:6379"),
            RedisTarget::Single("redis://127.0.0.1:6379".into())
        );
        assert_eq!(
            RedisTarget::parse("redis://:pw@10.0.0.1:7001,10.0.0.2:7002/0"),
            RedisTarget::Cluster(vec![
                "redis://:pw@10.0.0.1:7001/0".into(),
                "redis://:pw@10.0.0.2:7002/0".into()
            ])
        );
    }

    #[test]
    fn a_cluster_batch_has_one_pipeline_per_slot_and_one_event_is_one_slot() {
        let mut batch = Batch {
            cluster: true,
            pipes: Vec::new(),
            by_slot: HashMap::new(),
        };
        let (a, _) = batch.item_at("sg:{e1}:seats");
        batch.item("sg:{e1}:seats").get("sg:{e1}:seats");
        let (b, _) = batch.item_at("sg:{e1}:seats:head");
        let (c, _) = batch.item_at("sg:hold:h1");
        assert_eq!((a.pipe, a.first), (0, 0));
        assert_eq!((b.pipe, b.first), (0, 1));
        assert_eq!(c.pipe, 1);
        assert_eq!(batch.pipes.len(), 2);
    }
}
