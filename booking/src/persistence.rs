//! The event store's shared vocabulary, below every way of writing to it: its errors, the retry
//! policy, the snapshot cadence, and the two reads a writer needs (an aggregate with its version;
//! the version alone).
//!
//! Policy: nothing here writes. [`crate::store`] (cqrs-es per command) and [`crate::writers`]
//! (in-memory writers with group commit) both build on it.

use backon::ExponentialBuilder;
use cqrs_es::Aggregate;
use sqlx::PgPool;
use std::time::Duration;

/// How many events between two snapshots of a seat block or allowance.
pub const SNAPSHOT_EVERY: usize = 20;

/// How hard to try when concurrent commands on one aggregate conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(100),
        }
    }
}

impl RetryPolicy {
    /// The delays between attempts: exponential from `base_delay`, capped at `max_delay`, each
    /// with random jitter so that racing commands spread out.
    pub(crate) fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError<E: std::error::Error> {
    #[error("refused: {0}")]
    Rejected(E),
    #[error("still conflicting after {0} attempts")]
    Contention(u32),
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    #[error("stored events do not match the code: {0}")]
    Corrupt(String),
    #[error("too many commands queued for this aggregate")]
    Busy,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("event store unavailable: {0}")]
    Unavailable(#[from] sqlx::Error),
    #[error("stored event {0} does not deserialize: {1}")]
    Corrupt(String, serde_json::Error),
}

impl<E: std::error::Error> From<LoadError> for StoreError<E> {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Unavailable(e) => Self::Unavailable(e.to_string()),
            e @ LoadError::Corrupt(..) => Self::Corrupt(e.to_string()),
        }
    }
}

/// One aggregate from its snapshot (if any) plus the events after it, with its version (the last
/// sequence; 0 for an aggregate without events).
pub(crate) async fn load_with_version<A: Aggregate>(
    pool: &PgPool,
    id: &str,
) -> Result<(A, usize), LoadError> {
    let rows: Vec<(serde_json::Value, bool, i64)> = sqlx::query_as(
        "WITH snap AS (SELECT payload, last_sequence FROM snapshots
                        WHERE aggregate_type = $1 AND aggregate_id = $2)
         SELECT payload, true, last_sequence FROM snap
         UNION ALL
         (SELECT payload, false, sequence FROM events
           WHERE aggregate_type = $1 AND aggregate_id = $2
             AND sequence > COALESCE((SELECT last_sequence FROM snap), 0)
           ORDER BY sequence)",
    )
    .bind(A::TYPE)
    .bind(id)
    .fetch_all(pool)
    .await?;
    let mut state = A::default();
    let mut version = 0;
    for (payload, snapshot, sequence) in rows {
        let corrupt = |e| LoadError::Corrupt(format!("{} {id}", A::TYPE), e);
        if snapshot {
            state = serde_json::from_value::<A>(payload).map_err(corrupt)?;
        } else {
            state.apply(serde_json::from_value::<A::Event>(payload).map_err(corrupt)?);
        }
        version = sequence as usize;
    }
    Ok((state, version))
}

/// The version the store holds for an aggregate now (its last sequence; 0 without events): one
/// index lookup, to tell whether a state held in memory is still the latest.
pub(crate) async fn stored_version(
    pool: &PgPool,
    aggregate_type: &str,
    id: &str,
) -> Result<usize, sqlx::Error> {
    let versions = stored_versions(pool, aggregate_type, &[id.to_owned()]).await?;
    Ok(versions.first().copied().unwrap_or(0))
}

/// The versions the store holds now for several aggregates of one type, in the order of `ids`,
/// in one statement: the primary key read backwards, one entry each (`max()` was planned as a
/// scan of every event of the aggregate); ids without events are at 0.
pub(crate) async fn stored_versions(
    pool: &PgPool,
    aggregate_type: &str,
    ids: &[String],
) -> Result<Vec<usize>, sqlx::Error> {
    let versions: Vec<i64> = sqlx::query_scalar(
        "SELECT COALESCE((SELECT e.sequence FROM events e
                           WHERE e.aggregate_type = $1 AND e.aggregate_id = ids.id
                           ORDER BY e.sequence DESC LIMIT 1), 0)
           FROM unnest($2::text[]) WITH ORDINALITY AS ids(id, n)
          ORDER BY ids.n",
    )
    .bind(aggregate_type)
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(versions.into_iter().map(|v| v as usize).collect())
}
