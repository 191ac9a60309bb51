//! The Redis cache of the read models, and the pub/sub channels that carry their changes.
//!
//! Policy: **Redis is a cache, never the truth.** Everything here can be flushed at any moment; the
//! durable read models in Postgres are always there to answer and to refill from.
//!
//! How a cached seat map stays correct (per event, keys share a `{event}` hash tag):
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

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, ErrorKind, Pipeline, RedisError, Script, ServerErrorKind};
use uuid::Uuid;

use crate::records::{HoldRecord, ReadModelChanges, SeatMap, SeatUpdate};

/// How long a cached entry lives without being touched (bounds memory, not correctness).
const TTL_SECONDS: i64 = 3_600;

/// Applies a batch's seat changes if the cached map is exactly at the batch's previous version;
/// always raises the head marker.
static APPLY_SEAT_UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local head = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(ARGV[2]) > head then redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[3]) end
local ver = redis.call('GET', KEYS[2])
if ver and tonumber(ver) == tonumber(ARGV[1]) and redis.call('EXISTS', KEYS[1]) == 1 then
  for i = 4, #ARGV, 2 do redis.call('SETRANGE', KEYS[1], tonumber(ARGV[i]), ARGV[i + 1]) end
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

/// Stores a hold unless the cache already has a newer version of it.
static PUT_HOLD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ver = tonumber(redis.call('HGET', KEYS[1], 'v') or '-1')
if tonumber(ARGV[1]) > ver then
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'json', ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1",
    )
});

/// Sends every script to Redis, which keeps them until it restarts or is flushed.
async fn load_scripts(conn: &mut ConnectionManager) -> Result<(), RedisError> {
    for script in [&*APPLY_SEAT_UPDATE, &*FILL_SEAT_MAP, &*PUT_HOLD] {
        script.load_async(conn).await?;
    }
    Ok(())
}

#[derive(Clone)]
pub struct Cache {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Redis is a cache: a command that does not answer in [`RESPONSE_TIMEOUT`] fails, and the
/// reader falls back to PostgreSQL rather than wait for a stalled server.
pub const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

fn timeouts() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
}

impl Cache {
    /// Connects (and reconnects by itself later). `prefix` namespaces every key and channel, so
    /// several installations or tests can share one Redis.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, RedisError> {
        let client = redis::Client::open(url)?;
        let mut conn = ConnectionManager::new_with_config(client, timeouts()).await?;
        load_scripts(&mut conn).await?;
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
        format!("{}hold:{hold_id}", self.prefix)
    }

    /// The channel a seat map's changes are published on.
    pub fn seat_channel(&self, event_id: Uuid) -> String {
        format!("{}pub:seats:{event_id}", self.prefix)
    }

    /// The channel a hold's changes are published on.
    pub fn hold_channel(&self, hold_id: Uuid) -> String {
        format!("{}pub:hold:{hold_id}", self.prefix)
    }

    /// The channel an order's changes are published on.
    pub fn order_channel(&self, order_id: Uuid) -> String {
        format!("{}pub:order:{order_id}", self.prefix)
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

    /// Sends `pipe`; if Redis no longer knows the scripts, sends them and the pipeline again.
    async fn send(&self, pipe: &Pipeline) -> Result<(), RedisError> {
        let mut conn = self.conn.clone();
        match pipe.query_async::<()>(&mut conn).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                load_scripts(&mut conn).await?;
                pipe.query_async::<()>(&mut conn).await
            }
            other => other,
        }
    }

    /// Writes a committed batch to the cache and publishes it, in one round trip.
    pub async fn write_through(&self, changes: &ReadModelChanges) -> Result<(), RedisError> {
        if changes.seats.is_empty() && changes.holds.is_empty() && changes.orders.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for update in &changes.seats {
            self.push_seat_update(&mut pipe, update);
            pipe.publish(
                self.seat_channel(update.event_id),
                serde_json::to_string(update).expect("updates serialize"),
            )
            .ignore();
        }
        for hold in &changes.holds {
            let json = serde_json::to_string(hold).expect("holds serialize");
            self.push_hold(&mut pipe, hold, &json);
            pipe.publish(self.hold_channel(hold.hold_id), json).ignore();
        }
        for order in &changes.orders {
            let json = serde_json::to_string(order).expect("orders serialize");
            pipe.publish(self.order_channel(order.order_id), json)
                .ignore();
        }
        self.send(&pipe).await
    }

    fn push_seat_update(&self, pipe: &mut Pipeline, update: &SeatUpdate) {
        Self::eval(pipe, &APPLY_SEAT_UPDATE, &self.seat_keys(update.event_id));
        pipe.arg(update.from_version)
            .arg(update.version)
            .arg(TTL_SECONDS);
        for (seat, status) in &update.changes {
            pipe.arg(*seat).arg(status.to_string());
        }
        pipe.ignore();
    }

    fn push_hold(&self, pipe: &mut Pipeline, hold: &HoldRecord, json: &str) {
        Self::eval(pipe, &PUT_HOLD, &[self.hold_key(hold.hold_id)]);
        pipe.arg(hold.version).arg(json).arg(TTL_SECONDS).ignore();
    }

    /// Cached seat maps that are known to be current; `None` where the cache cannot vouch.
    pub async fn seat_maps(&self, event_ids: &[Uuid]) -> Result<Vec<Option<SeatMap>>, RedisError> {
        let mut pipe = redis::pipe();
        for id in event_ids {
            let [map, ver, head] = self.seat_keys(*id);
            pipe.get(map).get(ver).get(head);
        }
        type Entry = (Option<Vec<u8>>, Option<i64>, Option<i64>);
        let found: Vec<Entry> = {
            let flat: Vec<redis::Value> = pipe.query_async(&mut self.conn.clone()).await?;
            flat.chunks(3)
                .map(|c| {
                    Ok((
                        redis::from_redis_value(c[0].clone())?,
                        redis::from_redis_value(c[1].clone())?,
                        redis::from_redis_value(c[2].clone())?,
                    ))
                })
                .collect::<Result<_, RedisError>>()?
        };
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
        let mut pipe = redis::pipe();
        for m in maps {
            Self::eval(&mut pipe, &FILL_SEAT_MAP, &self.seat_keys(m.event_id));
            pipe.arg(m.version)
                .arg(m.seats.as_slice())
                .arg(TTL_SECONDS)
                .ignore();
        }
        self.send(&pipe).await
    }

    pub async fn holds(&self, hold_ids: &[Uuid]) -> Result<Vec<Option<HoldRecord>>, RedisError> {
        let mut pipe = redis::pipe();
        for id in hold_ids {
            pipe.hget(self.hold_key(*id), "json");
        }
        let found: Vec<Option<String>> = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(found
            .into_iter()
            .map(|j| j.and_then(|j| serde_json::from_str(&j).ok()))
            .collect())
    }

    pub async fn fill_holds(&self, holds: &[HoldRecord]) -> Result<(), RedisError> {
        if holds.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for h in holds {
            let json = serde_json::to_string(h).expect("holds serialize");
            self.push_hold(&mut pipe, h, &json);
        }
        self.send(&pipe).await
    }

    /// Drops the cached copies of these events' seat maps and of these holds: their next read
    /// comes from Postgres and refills them.
    pub async fn forget(&self, event_ids: &[Uuid], hold_ids: &[Uuid]) -> Result<(), RedisError> {
        let mut keys: Vec<String> = Vec::with_capacity(event_ids.len() * 3 + hold_ids.len());
        for id in event_ids {
            keys.extend(self.seat_keys(*id));
        }
        keys.extend(hold_ids.iter().map(|id| self.hold_key(*id)));
        let mut conn = self.conn.clone();
        for chunk in keys.chunks(500) {
            conn.del::<_, ()>(chunk).await?;
        }
        Ok(())
    }

    /// Deletes every key of this installation (tests, `rebuild`, and a projector that cannot tell
    /// which cached copies its predecessor left stale).
    pub async fn clear(&self) -> Result<(), RedisError> {
        let mut conn = self.conn.clone();
        let keys: Vec<String> = {
            let mut iter = conn
                .scan_match::<_, String>(format!("{}*", self.prefix))
                .await?;
            let mut keys = Vec::new();
            while let Some(k) = futures::StreamExt::next(&mut iter).await {
                keys.push(k?);
            }
            keys
        };
        for chunk in keys.chunks(500) {
            conn.del::<_, ()>(chunk).await?;
        }
        Ok(())
    }
}
