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

/// The first snapshot of a seat block or allowance comes after this many events (plus the
/// aggregate's offset, see [`snapshot_index`]).
pub const SNAPSHOT_FIRST: usize = 20;
/// The most events between two snapshots: what a cold start reads after its snapshot, at most.
/// Reads that load many blocks from the store (a strong-consistency seat map of a big event) read
/// up to that many per block: after the durable-holds benchmark (~130 events a block) the audit's
/// strong read of its 100,000-seat event reads ~23,000 events where a snapshot every 20 events
/// left ~5,000; the cap keeps the worst case at 4x the old one (80 against 19 a block).
pub const SNAPSHOT_GAP_MAX: usize = 80;

/// How many snapshots an aggregate has had by `version`: a batch that raises it writes one.
///
/// The gaps grow with the version (the first after [`SNAPSHOT_FIRST`] events, then each gap as
/// long as the version reached, up to [`SNAPSHOT_GAP_MAX`]): a seat block's state grows with
/// its holds (up to its seats' live holds and a few closed ones), so snapshots every 20 events
/// wrote twice the bytes of the events they cover (a 100-seat row sold one seat at a time:
/// 20 + 40 + ... + 100 holds serialized, against 100 events); doubling gaps write 20 + 40 + 80,
/// and a cold start still reads at most [`SNAPSHOT_GAP_MAX`] events. Each aggregate's thresholds are shifted by
/// an offset of its own (0 to [`SNAPSHOT_FIRST`] - 1, from its id), so blocks sold at the
/// same pace do not all snapshot in the same second.
pub fn snapshot_index(id: &str, version: usize) -> usize {
    let mut threshold = SNAPSHOT_FIRST + offset(id);
    let mut index = 0;
    while threshold < SNAPSHOT_GAP_MAX {
        if version < threshold {
            return index;
        }
        index += 1;
        threshold += threshold;
    }
    match version.checked_sub(threshold) {
        Some(past) => index + 1 + past / SNAPSHOT_GAP_MAX,
        None => index,
    }
}

/// A stable offset from an aggregate id (FNV-1a; the same in every process and release).
fn offset(id: &str) -> usize {
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % SNAPSHOT_FIRST as u64) as usize
}

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
    let mut loaded = (A::default(), 0);
    for (payload, snapshot, sequence) in rows {
        apply_row(&mut loaded, id, payload, snapshot, sequence)?;
    }
    Ok(loaded)
}

/// One stored row applied to an aggregate being loaded (with its version): a snapshot replaces
/// the state, an event is applied; the version becomes the row's sequence.
pub(crate) fn apply_row<A: Aggregate>(
    (state, version): &mut (A, usize),
    id: &str,
    payload: serde_json::Value,
    snapshot: bool,
    sequence: i64,
) -> Result<(), LoadError> {
    let corrupt = |e| LoadError::Corrupt(format!("{} {id}", A::TYPE), e);
    if snapshot {
        *state = serde_json::from_value::<A>(payload).map_err(corrupt)?;
    } else {
        state.apply(serde_json::from_value::<A::Event>(payload).map_err(corrupt)?);
    }
    *version = sequence as usize;
    Ok(())
}

/// Several aggregates of one type in one statement, each from its snapshot (if any) plus the
/// events after it, with its version; ids without events are left out. Each id is a lateral
/// key lookup of its own (why: [`crate::store::EventStore::load`]).
pub(crate) async fn load_many_with_version<A: Aggregate>(
    pool: &PgPool,
    ids: &[String],
) -> Result<std::collections::HashMap<String, (A, usize)>, LoadError> {
    let rows: Vec<(String, serde_json::Value, bool, i64)> = sqlx::query_as(
        "WITH wanted AS (
              SELECT w.id, s.payload, COALESCE(s.last_sequence, 0) AS after
                FROM (SELECT DISTINCT unnest($2::text[]) AS id) w
                LEFT JOIN snapshots s
                  ON s.aggregate_type = $1 AND s.aggregate_id = w.id)
         SELECT aggregate_id, payload, snapshot, sequence FROM (
              SELECT id AS aggregate_id, payload, true AS snapshot, after AS sequence
                FROM wanted WHERE payload IS NOT NULL
              UNION ALL
              SELECT e.aggregate_id, e.payload, false, e.sequence
                FROM wanted
               CROSS JOIN LATERAL (
                     SELECT aggregate_id, payload, sequence FROM events
                      WHERE aggregate_type = $1 AND aggregate_id = wanted.id
                        AND sequence > wanted.after
                     OFFSET 0) e) rows
          ORDER BY aggregate_id, snapshot DESC, sequence",
    )
    .bind(A::TYPE)
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let mut loaded = std::collections::HashMap::<String, (A, usize)>::new();
    for (id, payload, snapshot, sequence) in rows {
        let aggregate = loaded.entry(id.clone()).or_default();
        apply_row(aggregate, &id, payload, snapshot, sequence)?;
    }
    Ok(loaded)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The versions at which `id` gets a snapshot, up to `until`.
    fn snapshots_of(id: &str, until: usize) -> Vec<usize> {
        (1..=until)
            .filter(|&v| snapshot_index(id, v) > snapshot_index(id, v - 1))
            .collect()
    }

    #[test]
    fn given_a_new_aggregate_when_it_has_fewer_than_the_first_cadence_then_no_snapshot() {
        for id in ["event-1:block-0", "event-1:alice", ""] {
            assert_eq!(snapshot_index(id, 0), 0);
            assert_eq!(snapshot_index(id, SNAPSHOT_FIRST - 1), 0);
        }
    }

    #[test]
    fn given_many_events_then_gaps_double_up_to_the_cap_and_a_cold_start_reads_at_most_the_cap() {
        for n in 0..200 {
            let id = format!("0b6f6a3c-0000-4000-8000-{n:012}:block-{n}");
            let at = snapshots_of(&id, 5_000);
            assert!(
                (SNAPSHOT_FIRST..2 * SNAPSHOT_FIRST).contains(&at[0]),
                "{id}: {at:?}"
            );
            let gaps: Vec<usize> = at.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(
                gaps.iter().all(|&g| g <= SNAPSHOT_GAP_MAX),
                "{id}: {gaps:?}"
            );
            assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "{id}: {gaps:?}");
            assert_eq!(*gaps.last().unwrap(), SNAPSHOT_GAP_MAX, "{id}: {gaps:?}");
            // A row of 100 seats sold one at a time: at most 3 snapshots (was 5).
            assert!(snapshot_index(&id, 100) <= 3, "{id}: {at:?}");
            // The index counts the snapshots (the rows' `current_snapshot`).
            assert_eq!(snapshot_index(&id, 5_000), at.len());
        }
    }

    #[test]
    fn given_blocks_sold_at_the_same_pace_then_their_first_snapshots_spread_out() {
        let firsts: std::collections::HashSet<usize> = (0..100)
            .map(|n| snapshots_of(&format!("event:block-{n}"), 100)[0])
            .collect();
        assert!(firsts.len() >= 10, "{firsts:?}");
    }

    #[test]
    fn given_the_same_id_then_every_process_and_release_snapshots_at_the_same_versions() {
        // FNV-1a of "a" is 0xaf63dc4c8601ec8c: offset 16 (its remainder by 20).
        assert_eq!(
            snapshots_of("a", 400),
            vec![36, 72, 144, 224, 304, 384],
            "36 + 16, doubling while under the cap, then every 80"
        );
    }
}
