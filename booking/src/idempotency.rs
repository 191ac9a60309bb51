//! Idempotency keys: the stored outcome of a request, so that a retry with the same key gets the
//! same answer instead of running again. Adapters decide what a "request" and a "response" are
//! (REST: the caller's key, method, path and body; the HTTP response); this module stores them.
//!
//! Policy (after pretix's, which users of ticketing APIs know):
//! - The first request with a key runs; its outcome is stored for 24 hours.
//! - The same key with the same request within 24 hours gets the stored outcome again.
//! - While the first request with a key is still running, any other request with that key is
//!   refused ([`CommandError::IdempotencyInFlight`]); once it is done, the same key with a different
//!   request is refused ([`CommandError::IdempotencyKeyReused`]).
//! - A request that failed on the server's side is not stored ([`IdempotencyStore::reopen`]): the
//!   same request runs again on the client's retry, with the same seed. A request whose server died
//!   mid-way frees its key after [`STALE_AFTER_SECONDS`], also with the same seed. Either way the
//!   re-run derives the same ids and lands on the same aggregates, nothing is done twice, and the
//!   answer describes what exists (a hold's real expiry and status), not a fresh copy.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::error::{CommandError, ErrorKind};

pub const STALE_AFTER_SECONDS: i32 = 60;
pub const MAX_KEY_LEN: usize = 255;
/// How many times a claim is tried while the key changes hands (expired, taken over) under it.
const CLAIM_ATTEMPTS: usize = 3;

/// A stored outcome, as the adapter that produced it will replay it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    /// Headers worth replaying (name, value).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What to do with a request that carries a key.
#[derive(Debug)]
pub enum Claim {
    /// Run it. `seed` identifies this run of the key (the key plus when it was claimed): new ids
    /// derived from it are the same on a re-run after a crash, and new for a key reused after its
    /// 24 hours.
    Run { seed: String },
    /// Answer with the stored outcome.
    Replay(StoredResponse),
}

/// Checks a key's shape: 1 to [`MAX_KEY_LEN`] visible ASCII characters (`!` to `~`).
pub fn check_key(key: &str) -> Result<(), CommandError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CommandError::InvalidIdempotencyKey { max: MAX_KEY_LEN });
    }
    Ok(())
}

/// A fingerprint of a request from its parts (each length-prefixed, so parts cannot run together).
pub fn fingerprint(parts: &[&[u8]]) -> Vec<u8> {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().to_vec()
}

fn seed(key: &str, claimed_at: DateTime<Utc>) -> String {
    format!("{key}\n{}", claimed_at.timestamp_micros())
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    fingerprint: Vec<u8>,
    state: String,
    response_status: Option<i16>,
    response_headers: Option<serde_json::Value>,
    response_body: Option<Vec<u8>>,
    created_at: DateTime<Utc>,
    expired: bool,
    stale: bool,
}

/// The `idempotency_keys` table.
#[derive(Clone)]
pub struct IdempotencyStore {
    pool: PgPool,
}

impl IdempotencyStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Claims `key` for a request with `fingerprint`, or says why not.
    pub async fn claim(&self, key: &str, fingerprint: &[u8]) -> Result<Claim, CommandError> {
        for _ in 0..CLAIM_ATTEMPTS {
            let inserted: Option<DateTime<Utc>> = sqlx::query_scalar(
                "INSERT INTO idempotency_keys (key, fingerprint, state) VALUES ($1, $2, 'in_flight')
                 ON CONFLICT (key) DO NOTHING RETURNING created_at",
            )
            .bind(key)
            .bind(fingerprint)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(created_at) = inserted {
                return Ok(Claim::Run {
                    seed: seed(key, created_at),
                });
            }
            let Some(row) = sqlx::query_as::<_, KeyRow>(
                "SELECT fingerprint, state, response_status, response_headers, response_body,
                        created_at,
                        created_at < now() - interval '24 hours' AS expired,
                        updated_at < now() - make_interval(secs => $2) AS stale
                   FROM idempotency_keys WHERE key = $1",
            )
            .bind(key)
            .bind(f64::from(STALE_AFTER_SECONDS))
            .fetch_optional(&self.pool)
            .await?
            else {
                continue;
            };
            if row.expired {
                sqlx::query(
                    "DELETE FROM idempotency_keys
                      WHERE key = $1 AND created_at < now() - interval '24 hours'",
                )
                .bind(key)
                .execute(&self.pool)
                .await?;
                continue;
            }
            if row.state == "retry" {
                // A run that failed on the server's side: the same request runs again with the
                // same seed, so it lands on what the failed run created.
                if row.fingerprint != fingerprint {
                    return Err(CommandError::IdempotencyKeyReused);
                }
                if self.resume(key).await? {
                    return Ok(Claim::Run {
                        seed: seed(key, row.created_at),
                    });
                }
                continue;
            }
            if row.state == "in_flight" {
                if row.stale && self.take_over(key).await? {
                    return Ok(Claim::Run {
                        seed: seed(key, row.created_at),
                    });
                }
                return Err(CommandError::IdempotencyInFlight);
            }
            if row.fingerprint != fingerprint {
                return Err(CommandError::IdempotencyKeyReused);
            }
            return Ok(Claim::Replay(stored(row)));
        }
        Err(CommandError::IdempotencyInFlight)
    }

    /// Takes over a key whose request has been in flight too long (its server died).
    async fn take_over(&self, key: &str) -> Result<bool, sqlx::Error> {
        let taken = sqlx::query(
            "UPDATE idempotency_keys SET updated_at = now()
              WHERE key = $1 AND state = 'in_flight'
                AND updated_at < now() - make_interval(secs => $2)",
        )
        .bind(key)
        .bind(f64::from(STALE_AFTER_SECONDS))
        .execute(&self.pool)
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Stores the outcome of the run that claimed `key`.
    pub async fn remember(&self, key: &str, response: &StoredResponse) -> Result<(), CommandError> {
        let headers: serde_json::Map<String, serde_json::Value> = response
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.clone().into()))
            .collect();
        sqlx::query(
            "UPDATE idempotency_keys
                SET state = 'done', response_status = $2, response_headers = $3, response_body = $4,
                    updated_at = now()
              WHERE key = $1",
        )
        .bind(key)
        .bind(response.status as i16)
        .bind(serde_json::Value::Object(headers))
        .bind(&response.body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes a key back from `retry` for a new run (false if another request took it first).
    async fn resume(&self, key: &str) -> Result<bool, sqlx::Error> {
        let resumed = sqlx::query(
            "UPDATE idempotency_keys SET state = 'in_flight', updated_at = now()
              WHERE key = $1 AND state = 'retry'",
        )
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(resumed.rows_affected() == 1)
    }

    /// Reopens `key` for a retry without storing anything (the run failed on the server's side):
    /// the key keeps its seed, so the retry lands on whatever the failed run already created.
    pub async fn reopen(&self, key: &str) -> Result<(), CommandError> {
        sqlx::query(
            "UPDATE idempotency_keys SET state = 'retry', updated_at = now()
              WHERE key = $1 AND state = 'in_flight'",
        )
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// [`Self::reopen`], and if the store cannot be reached now (a primary lost mid-request), again
    /// every second in the background until it can, for less than [`STALE_AFTER_SECONDS`] (after
    /// which the key is taken over anyway): once the database is back, the client's retry runs
    /// at once instead of being refused as in flight for a minute.
    pub async fn reopen_eventually(&self, key: &str) -> Result<(), CommandError> {
        let Err(e) = self.reopen(key).await else {
            return Ok(());
        };
        let (store, key) = (self.clone(), key.to_owned());
        tokio::spawn(async move {
            let until = std::time::Instant::now()
                + std::time::Duration::from_secs(STALE_AFTER_SECONDS as u64 - 10);
            while std::time::Instant::now() < until {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                if store.reopen(&key).await.is_ok() {
                    return;
                }
            }
        });
        Err(e)
    }

    /// Frees `key` after a refusal that changed nothing, so a retry runs afresh.
    async fn discard(&self, key: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND state = 'in_flight'")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Runs `command` at most once for `key` (already scoped to its caller and operation) and
    /// `fingerprint`, for adapters that answer with values rather than HTTP responses (GraphQL):
    /// the first run's value is stored and replayed for 24 hours; a refusal (which changed
    /// nothing) frees the key; a failure on the server's side reopens it, so the retry runs with
    /// the same seed. `command` gets the seed to derive its ids from.
    pub async fn once<T, F, Fut>(
        &self,
        key: &str,
        fingerprint: &[u8],
        command: F,
    ) -> Result<T, CommandError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<T, CommandError>>,
    {
        let seed = match self.claim(key, fingerprint).await? {
            Claim::Replay(stored) => {
                return serde_json::from_slice(&stored.body).map_err(|e| {
                    CommandError::Internal(format!("stored outcome unreadable: {e}"))
                });
            }
            Claim::Run { seed } => seed,
        };
        let outcome = command(seed).await;
        let kept = match &outcome {
            Ok(value) => match serde_json::to_vec(value) {
                Ok(body) => {
                    let response = StoredResponse {
                        status: 200,
                        headers: Vec::new(),
                        body,
                    };
                    self.remember(key, &response).await
                }
                Err(e) => Err(CommandError::Internal(e.to_string())),
            },
            Err(e) if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Internal) => {
                self.reopen_eventually(key).await
            }
            Err(_) => self.discard(key).await.map_err(CommandError::from),
        };
        if let Err(e) = kept {
            // The caller still gets its answer; the key stays in flight and is taken over later.
            tracing::warn!(error = %e, "could not settle an idempotency key");
        }
        outcome
    }

    /// Deletes stored outcomes older than 24 hours (the sweeper calls this).
    pub async fn purge_expired(&self) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'",
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

fn stored(row: KeyRow) -> StoredResponse {
    let headers = row
        .response_headers
        .as_ref()
        .and_then(|h| h.as_object())
        .map(|map| {
            map.iter()
                .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    StoredResponse {
        status: row.response_status.unwrap_or(200) as u16,
        headers,
        body: row.response_body.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_characters() {
        assert!(check_key("k").is_ok());
        assert!(check_key(&"k".repeat(MAX_KEY_LEN)).is_ok());
        assert_eq!(check_key("").unwrap_err().code(), "invalid_idempotency_key");
        assert!(check_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn parts_cannot_run_together_in_a_fingerprint() {
        assert_ne!(fingerprint(&[b"ab", b"c"]), fingerprint(&[b"a", b"bc"]));
        assert_eq!(fingerprint(&[b"a", b"b"]), fingerprint(&[b"a", b"b"]));
    }

    #[test]
    fn a_seed_changes_with_the_claim_time() {
        let t = Utc::now();
        assert_ne!(
            seed("k", t),
            seed("k", t + chrono::Duration::microseconds(1))
        );
    }
}
