//! The projector runner: feeds one [`Projection`] every event of the log, in global order, forever.
//!
//! Policy:
//! - **Durable checkpoint per projection** (`projection_checkpoints`), advanced in the same Postgres
//!   transaction as the projection's own writes. The advance is conditional on the checkpoint still
//!   being where this runner read it, so a second runner (another process, or a `rebuild` that reset
//!   the projection meanwhile) makes this batch roll back instead of applying twice.
//! - **At-least-once with idempotent apply**: a crash anywhere means the batch is read again from the
//!   stored checkpoint; projections also skip events at or below the sequence they already applied
//!   per aggregate, so a redelivery changes nothing.
//! - **Wake-up**: `LISTEN seatgrid_events` (a trigger notifies on every append) with a polling
//!   fallback. A notification can arrive while an older transaction still holds the log's
//!   visibility line back; the runner then re-reads a few milliseconds later instead of waiting for
//!   the next poll.
//! - Side effects outside Postgres (cache writes, pub/sub) happen after commit, and only ever help
//!   readers: losing them costs freshness of a cache, never correctness of the durable read model.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};

use crate::event_log::{EventLog, EventLogError, GlobalPosition, RecordedEvent};

/// The Postgres channel the `events_appended` trigger notifies.
pub const EVENTS_CHANNEL: &str = "seatgrid_events";

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Log(#[from] EventLogError),
    /// A side effect the batch depends on (say, a call to a payment provider) failed; the batch
    /// rolls back and is tried again.
    #[error("{0}")]
    External(String),
    #[error("cannot read event {aggregate_type} {aggregate_id}#{sequence}: {reason}")]
    Corrupt {
        aggregate_type: String,
        aggregate_id: String,
        sequence: i64,
        reason: String,
    },
}

/// Something built from the event log.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// What to do after the batch committed (cache writes, notifications).
    type AfterCommit: Send;

    /// The checkpoint's name; stable across releases.
    fn name(&self) -> &'static str;

    /// The aggregate types whose events it applies (`None`: all). The others are read past (the
    /// checkpoint moves over them) without their payloads, and not decoded or remembered as
    /// applied: the order process and the payment relay need orders only, a small share of a
    /// sale's log.
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Applies a batch inside the transaction that also advances the checkpoint. Must be
    /// idempotent: the same events may be delivered again after a crash.
    async fn apply(
        &self,
        tx: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<Self::AfterCommit, ProjectionError>;

    /// Runs after the batch committed. Failures here must not lose anything durable.
    async fn after_commit(&self, effects: Self::AfterCommit);

    /// Deletes everything the projection built, inside the transaction that resets its checkpoint.
    async fn reset(&self, tx: &mut PgConnection) -> Result<(), ProjectionError>;
}

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Most events per transaction (plus the rest of the last transaction read from): a runner
    /// that keeps up reads fewer, one behind catches up in batches this large.
    pub batch_size: i64,
    /// How often to look without a notification.
    pub poll_interval: Duration,
    /// Pause after an error before trying again.
    pub retry_delay: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            // 2,000 rather than 500 for a runner that fell behind (a slow statement, a restart
            // with a backlog): larger batches rewrite the seat map's chunks and advance the
            // checkpoint less often, and split fewer holds whose events lie apart in the log (a
            // hold's allowance and seat-block events came ~380 events apart while they were two
            // sequential appends; 500-event batches then wrote most holds' row twice, 2,000
            // cut that from 1.65 to 1.2 writes a hold; they are one transaction now,
            // `booking::linked`). A runner that keeps up reads what is there (a few hundred
            // events a batch in the durable-holds benchmark), whatever the limit.
            batch_size: 2_000,
            poll_interval: Duration::from_millis(500),
            retry_delay: Duration::from_millis(500),
        }
    }
}

/// Stored checkpoints, shared by every projection (the ClickHouse stream included).
#[derive(Debug, Clone)]
pub struct Checkpoints {
    pool: PgPool,
}

impl Checkpoints {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The last position `name` applied (creating its row at the start if it has none).
    pub async fn load(&self, name: &str) -> Result<GlobalPosition, sqlx::Error> {
        sqlx::query("INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(name)
            .execute(&self.pool)
            .await?;
        let (transaction_id, position): (i64, i64) = sqlx::query_as(
            "SELECT transaction_id, position FROM projection_checkpoints WHERE name = $1",
        )
        .bind(name)
        .fetch_one(&self.pool)
        .await?;
        Ok(GlobalPosition::from_stored(transaction_id, position))
    }

    /// Moves `name` from `from` to `to` if it is still at `from`; false if someone else moved it.
    pub async fn advance(
        conn: &mut PgConnection,
        name: &str,
        from: GlobalPosition,
        to: GlobalPosition,
        events: usize,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE projection_checkpoints
                SET transaction_id = $4, position = $5, events_applied = events_applied + $6,
                    updated_at = now()
              WHERE name = $1 AND transaction_id = $2 AND position = $3",
        )
        .bind(name)
        .bind(from.stored_transaction_id())
        .bind(from.position)
        .bind(to.stored_transaction_id())
        .bind(to.position)
        .bind(events as i64)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How far `name` is behind the head of the log (counted up to [`LAG_COUNTED`] events, so
    /// that a projection far behind costs a bounded scan).
    pub async fn lag(&self, name: &str) -> Result<ProjectionLag, sqlx::Error> {
        let at = self.load(name).await?;
        let (behind, ms): (i64, f64) = sqlx::query_as(
            "SELECT count(*) AS behind,
                    COALESCE(EXTRACT(EPOCH FROM (clock_timestamp() - min(recorded_at))) * 1000, 0)::float8 AS ms
               FROM (SELECT recorded_at FROM events
                      WHERE (transaction_id, position) > ($1::bigint::text::xid8, $2)
                      ORDER BY transaction_id, position
                      LIMIT $3) behind",
        )
        .bind(at.stored_transaction_id())
        .bind(at.position)
        .bind(LAG_COUNTED)
        .fetch_one(&self.pool)
        .await?;
        Ok(ProjectionLag {
            events_behind: behind as u64,
            ms_behind: ms.max(0.0) as u64,
        })
    }
}

/// Most events [`Checkpoints::lag`] counts.
pub const LAG_COUNTED: i64 = 100_000;

/// How far a projection is behind: events committed but not applied yet (at most [`LAG_COUNTED`]),
/// and the age of the oldest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProjectionLag {
    pub events_behind: u64,
    pub ms_behind: u64,
}

/// Drops everything `projection` built and sets its checkpoint back to the start, in one
/// transaction. A runner that is serving meanwhile notices the moved checkpoint and replays.
pub async fn reset<P: Projection>(pool: &PgPool, projection: &P) -> Result<(), ProjectionError> {
    let mut tx = migrations::transaction::begin(pool).await?;
    sqlx::query(
        "INSERT INTO projection_checkpoints (name) VALUES ($1)
         ON CONFLICT (name) DO UPDATE SET transaction_id = 0, position = 0, events_applied = 0,
                                          updated_at = now()",
    )
    .bind(projection.name())
    .execute(&mut *tx)
    .await?;
    projection.reset(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

pub struct ProjectorRunner<P: Projection> {
    pool: PgPool,
    log: EventLog,
    checkpoints: Checkpoints,
    projection: Arc<P>,
    config: RunnerConfig,
}

impl<P: Projection> ProjectorRunner<P> {
    pub fn new(pool: PgPool, projection: Arc<P>, config: RunnerConfig) -> Self {
        Self {
            log: EventLog::new(pool.clone()),
            checkpoints: Checkpoints::new(pool.clone()),
            pool,
            projection,
            config,
        }
    }

    /// Runs until `shutdown` completes. Errors are logged and retried; they never end the loop.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut listener = None;
        let mut at = None;
        let mut woken_at: Option<Instant> = None;
        loop {
            if listener.is_none() {
                listener = self.listen().await;
            }
            let step = match at {
                Some(position) => self.step(position).await,
                None => self
                    .checkpoints
                    .load(self.projection.name())
                    .await
                    .map(|p| Step::Moved(Some(p)))
                    .map_err(ProjectionError::from),
            };
            let wait = match step {
                Ok(Step::Applied(to)) => {
                    at = Some(to);
                    continue;
                }
                Ok(Step::Moved(to)) => {
                    at = to;
                    continue;
                }
                Ok(Step::Idle) => match woken_at {
                    // A notification came but its events are not readable yet: look again soon.
                    Some(t) if t.elapsed() < Duration::from_millis(250) => Duration::from_millis(5),
                    _ => self.config.poll_interval,
                },
                Err(e) => {
                    tracing::warn!(projection = self.projection.name(), error = %e, "projector step failed; retrying");
                    at = None;
                    self.config.retry_delay
                }
            };
            let notified = async {
                match listener.as_mut() {
                    Some(l) => l.recv().await.map(|_| ()),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut shutdown => return,
                got = notified => match got {
                    Ok(()) => woken_at = Some(Instant::now()),
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the LISTEN connection; polling until it is back");
                        listener = None;
                    }
                },
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// A LISTEN on a connection of its own, outside the shared pool: it is held for as long as the
    /// runner lives, and the process's runners (projector, ingester, payment relay, order
    /// process) must not take a small pool's connections away from requests.
    async fn listen(&self) -> Option<PgListener> {
        let options = self.pool.connect_options().as_ref().clone();
        let own = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(options);
        let mut listener = PgListener::connect_with(&own).await.ok()?;
        listener.listen(EVENTS_CHANNEL).await.ok()?;
        Some(listener)
    }

    /// Applies the next batch after `from`, if any.
    async fn step(&self, from: GlobalPosition) -> Result<Step, ProjectionError> {
        let types = self.projection.aggregate_types();
        let read = self
            .log
            .read_after_of(from, self.config.batch_size, types)
            .await?;
        let Some(last) = read.events.last().map(|e| e.global) else {
            return Ok(Step::Idle);
        };
        let read_count = read.scanned;
        let events: Vec<RecordedEvent> = match types {
            Some(types) => read
                .events
                .into_iter()
                .filter(|e| types.contains(&e.aggregate_type.as_str()))
                .collect(),
            None => read.events,
        };
        let mut tx = migrations::transaction::begin(&self.pool).await?;
        let effects = self.projection.apply(&mut tx, &events).await?;
        let name = self.projection.name();
        if !Checkpoints::advance(&mut tx, name, from, last, read_count).await? {
            tx.rollback().await?;
            tracing::info!(
                projection = name,
                "checkpoint moved elsewhere (rebuild or another runner); reloading"
            );
            return Ok(Step::Moved(None));
        }
        tx.commit().await?;
        self.projection.after_commit(effects).await;
        // One counter update per event type of the batch (a batch has few), not per event.
        let mut by_type: Vec<(&str, u64)> = Vec::new();
        for e in &events {
            match by_type.iter_mut().find(|(t, _)| *t == e.event_type) {
                Some((_, n)) => *n += 1,
                None => by_type.push((&e.event_type, 1)),
            }
        }
        for (event_type, n) in by_type {
            metrics::counter!(
                "seatgrid_events_projected_total",
                "projection" => name,
                "event_type" => event_type.to_owned()
            )
            .increment(n);
        }
        crate::tracing_context::applied(name, &events);
        Ok(Step::Applied(last))
    }
}

enum Step {
    Applied(GlobalPosition),
    /// The stored checkpoint is elsewhere: continue from it (`None`: load it first).
    Moved(Option<GlobalPosition>),
    Idle,
}
