//! The Redis cache of the read models, and the pub/sub channels that carry their changes.
//!
//! Policy: **Redis is a cache, never the truth.** Everything here can be flushed at any moment; the
//! durable read models in Postgres are always there to answer and to refill from.
//!
//! How a cached seat map stays correct (per event, keys and channel share a `{event}` hash tag, so
//! on a Redis Cluster they live in one slot; a hold's key and channel share `{hold}`):
//! - `…:seats` holds the map (one byte per seat, updated in place with `SETRANGE`), `…:seats:v` the
//!   version it reflects, `…:seats:head` the newest version the projector has committed.
//! - The projector, after commit, updates the cached map only if it is exactly at the batch's
//!   previous version (so no change is ever missed), and always raises `head`.
//! - A reader trusts the cached map only when its version is at least `head`; otherwise (missing,
//!   flushed, or behind because Redis missed an update) it reads Postgres and refills, keeping
//!   whichever copy is newer.
//!
//! Holds are cached whole (JSON) with their version; a write only ever replaces an older version.
//!
//! The Lua scripts are sent once and then called by their hash (`EVALSHA`); a Redis that forgot
//! them (restarted, flushed) gets them again and the pipeline is sent once more.

use std::sync::LazyLock;

use redis::{Pipeline, RedisError, Script};
use uuid::Uuid;

use crate::records::{HoldRecord, ReadModelChanges, SeatMap, SeatUpdate};
use crate::redis_conn::{Batch, RedisConn};

/// How long a cached entry lives without being touched (bounds memory, not correctness).
const TTL_SECONDS: i64 = 3_600;

/// Applies a batch's seat changes if the cached map is exactly at the batch's previous version;
/// always raises the head marker and publishes the update (ARGV[4] on channel ARGV[5]). Publishing
/// from the script keeps one event's commands in its hash slot on a Redis Cluster.
static APPLY_SEAT_UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local head = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(ARGV[2]) > head then redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[3]) end
redis.call('PUBLISH', ARGV[5], ARGV[4])
local ver = redis.call('GET', KEYS[2])
if ver and tonumber(ver) == tonumber(ARGV[1]) and redis.call('EXISTS', KEYS[1]) == 1 then
  for i = 6, #ARGV, 2 do redis.call('SETRANGE', KEYS[1], tonumber(ARGV[i]), ARGV[i + 1]) end
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return 1",
    )
});

/// Stores a whole seat map read from Postgres unless the cache already has a newer one.
static FILL_SEAT_MAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ver = tonumber(redis.call('GET', KEYS[2]) or '-1')
if redis.call('EXISTS', KEYS[1]) == 0 or tonumber(ARGV[1]) > ver then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[3])
end
local head = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(ARGV[1]) > head then redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[3]) end
return 1",
    )
});

/// Stores a hold unless the cache already has a newer version of it; publishes it on channel
/// ARGV[4] when one is given.
static PUT_HOLD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ver = tonumber(redis.call('HGET', KEYS[1], 'v') or '-1')
if tonumber(ARGV[1]) > ver then
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'json', ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
if ARGV[4] then redis.call('PUBLISH', ARGV[4], ARGV[2]) end
return 1",
    )
});

/// Every script, which Redis keeps until it restarts or is flushed.
fn scripts() -> [&'static Script; 3] {
    [&*APPLY_SEAT_UPDATE, &*FILL_SEAT_MAP, &*PUT_HOLD]
}

#[derive(Clone)]
pub struct Cache {
    conn: RedisConn,
    prefix: String,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Cache {
    /// Connects (and reconnects by itself later). `prefix` namespaces every key and channel, so
    /// several installations or tests can share one Redis. `url` may name a Redis Cluster
    /// ([`crate::redis_conn`]).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, RedisError> {
        let conn = RedisConn::connect(url).await?;
        conn.load_scripts(&scripts()).await?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn seat_keys(&self, event_id: Uuid) -> [String; 3] {
        let base = format!("{}{{{event_id}}}:seats", self.prefix);
        [base.clone(), format!("{base}:v"), format!("{base}:head")]
    }

    fn hold_key(&self, hold_id: Uuid) -> String {
        format!("{}hold:{{{hold_id}}}", self.prefix)
    }

    /// The channel a seat map's changes are published on (in its keys' hash slot).
    pub fn seat_channel(&self, event_id: Uuid) -> String {
        format!("{}pub:seats:{{{event_id}}}", self.prefix)
    }

    /// The channel a hold's changes are published on (in its key's hash slot).
    pub fn hold_channel(&self, hold_id: Uuid) -> String {
        format!("{}pub:hold:{{{hold_id}}}", self.prefix)
    }

    /// The channel an order's changes are published on.
    pub fn order_channel(&self, order_id: Uuid) -> String {
        format!("{}pub:order:{{{order_id}}}", self.prefix)
    }

    /// The pattern matching every channel of this installation.
    pub fn channel_pattern(&self) -> String {
        format!("{}pub:*", self.prefix)
    }

    /// Starts a call of `script` in `pipe`; the caller adds its arguments.
    fn eval(pipe: &mut Pipeline, script: &Script, keys: &[String]) {
        pipe.cmd("EVALSHA")
            .arg(script.get_hash())
            .arg(keys.len())
            .arg(keys);
    }

    /// Sends `batch` (one round trip per hash slot of a cluster, concurrently); if Redis no
    /// longer knows the scripts, sends them and the pipeline again.
    async fn send(&self, batch: &Batch) -> Result<(), RedisError> {
        self.conn.send(batch, &scripts()).await.map(drop)
    }

    /// Writes a committed batch to the cache and publishes it, in one round trip (per slot).
    pub async fn write_through(&self, changes: &ReadModelChanges) -> Result<(), RedisError> {
        if changes.seats.is_empty() && changes.holds.is_empty() && changes.orders.is_empty() {
            return Ok(());
        }
        let mut batch = self.conn.batch();
        for update in &changes.seats {
            let keys = self.seat_keys(update.event_id);
            let channel = self.seat_channel(update.event_id);
            Self::push_seat_update(batch.item(&keys[0]), keys, update, &channel);
        }
        for hold in &changes.holds {
            let json = serde_json::to_string(hold).expect("holds serialize");
            let key = self.hold_key(hold.hold_id);
            let channel = self.hold_channel(hold.hold_id);
            Self::push_hold(batch.item(&key), key, hold, &json, Some(&channel));
        }
        for order in &changes.orders {
            let json = serde_json::to_string(order).expect("orders serialize");
            // No cached copy: published alone (in the channel's own slot on a cluster).
            let channel = self.order_channel(order.order_id);
            batch.item(&channel).publish(channel, json).ignore();
        }
        self.send(&batch).await
    }

    fn push_seat_update(
        pipe: &mut Pipeline,
        keys: [String; 3],
        update: &SeatUpdate,
        channel: &str,
    ) {
        Self::eval(pipe, &APPLY_SEAT_UPDATE, &keys);
        pipe.arg(update.from_version)
            .arg(update.version)
            .arg(TTL_SECONDS)
            .arg(serde_json::to_string(update).expect("updates serialize"))
            .arg(channel);
        for (seat, status) in &update.changes {
            pipe.arg(*seat).arg(status.to_string());
        }
        pipe.ignore();
    }

    fn push_hold(
        pipe: &mut Pipeline,
        key: String,
        hold: &HoldRecord,
        json: &str,
        channel: Option<&str>,
    ) {
        Self::eval(pipe, &PUT_HOLD, &[key]);
        pipe.arg(hold.version).arg(json).arg(TTL_SECONDS);
        if let Some(channel) = channel {
            pipe.arg(channel);
        }
        pipe.ignore();
    }

    /// Cached seat maps that are known to be current; `None` where the cache cannot vouch.
    pub async fn seat_maps(&self, event_ids: &[Uuid]) -> Result<Vec<Option<SeatMap>>, RedisError> {
        if event_ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<[String; 3]> = event_ids.iter().map(|id| self.seat_keys(*id)).collect();
        let routes: Vec<String> = keys.iter().map(|k| k[0].clone()).collect();
        let answers = self
            .conn
            .read_each(&routes, 3, |i, pipe| {
                let [map, ver, head] = &keys[i];
                pipe.get(map).get(ver).get(head);
            })
            .await?;
        type Entry = (Option<Vec<u8>>, Option<i64>, Option<i64>);
        let found: Vec<Entry> = answers
            .into_iter()
            .map(|c| {
                Ok((
                    redis::from_redis_value(c[0].clone())?,
                    redis::from_redis_value(c[1].clone())?,
                    redis::from_redis_value(c[2].clone())?,
                ))
            })
            .collect::<Result<_, RedisError>>()?;
        Ok(event_ids
            .iter()
            .zip(found)
            .map(|(id, (seats, version, head))| match (seats, version) {
                (Some(seats), Some(version)) if version >= head.unwrap_or(0) => Some(SeatMap {
                    event_id: *id,
                    seats,
                    version,
                }),
                _ => None,
            })
            .collect())
    }

    /// Caches seat maps read from Postgres (never replacing a newer cached one).
    pub async fn fill_seat_maps(&self, maps: &[SeatMap]) -> Result<(), RedisError> {
        if maps.is_empty() {
            return Ok(());
        }
        let mut batch = self.conn.batch();
        for m in maps {
            let keys = self.seat_keys(m.event_id);
            let pipe = batch.item(&keys[0]);
            Self::eval(pipe, &FILL_SEAT_MAP, &keys);
            pipe.arg(m.version)
                .arg(m.seats.as_slice())
                .arg(TTL_SECONDS)
                .ignore();
        }
        self.send(&batch).await
    }

    pub async fn holds(&self, hold_ids: &[Uuid]) -> Result<Vec<Option<HoldRecord>>, RedisError> {
        if hold_ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = hold_ids.iter().map(|id| self.hold_key(*id)).collect();
        let answers = self
            .conn
            .read_each(&keys, 1, |i, pipe| {
                pipe.hget(&keys[i], "json");
            })
            .await?;
        answers
            .into_iter()
            .map(|a| {
                let json: Option<String> = redis::from_redis_value(a[0].clone())?;
                Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
            })
            .collect()
    }

    pub async fn fill_holds(&self, holds: &[HoldRecord]) -> Result<(), RedisError> {
        if holds.is_empty() {
            return Ok(());
        }
        let mut batch = self.conn.batch();
        for h in holds {
            let json = serde_json::to_string(h).expect("holds serialize");
            let key = self.hold_key(h.hold_id);
            Self::push_hold(batch.item(&key), key, h, &json, None);
        }
        self.send(&batch).await
    }

    /// Drops the cached copies of these events' seat maps and of these holds: their next read
    /// comes from Postgres and refills them.
    pub async fn forget(&self, event_ids: &[Uuid], hold_ids: &[Uuid]) -> Result<(), RedisError> {
        let mut keys: Vec<String> = Vec::with_capacity(event_ids.len() * 3 + hold_ids.len());
        for id in event_ids {
            keys.extend(self.seat_keys(*id));
        }
        keys.extend(hold_ids.iter().map(|id| self.hold_key(*id)));
        self.conn.del(&keys).await
    }

    /// Deletes every key of this installation (tests, `rebuild`, and a projector that cannot tell
    /// which cached copies its predecessor left stale).
    pub async fn clear(&self) -> Result<(), RedisError> {
        let keys = self.conn.scan(&format!("{}*", self.prefix)).await?;
        self.conn.del(&keys).await
    }
}

#[cfg(test)]
mod tests {
    use redis::cluster_routing::Slot;

    use super::*;

    #[tokio::test]
    async fn one_events_keys_and_channel_share_a_slot_and_so_do_a_holds() {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let cache = Cache::connect(&url, "sg:test:").await.unwrap();
        let (event, hold) = (Uuid::new_v4(), Uuid::new_v4());
        let [map, ver, head] = cache.seat_keys(event);
        let slot = Slot::for_key(&map);
        for other in [ver, head, cache.seat_channel(event)] {
            assert_eq!(Slot::for_key(&other), slot, "{other}");
        }
        assert_eq!(
            Slot::for_key(cache.hold_key(hold)),
            Slot::for_key(cache.hold_channel(hold))
        );
        assert!(cache.seat_channel(event).starts_with("sg:test:pub:"));
    }
}
