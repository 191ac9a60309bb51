//! Group commit: the appends of many aggregate writers in one transaction.
//!
//! Policy:
//! - A writer ([`crate::writers`]) hands over one [`Append`]: the events of one aggregate, numbered
//!   from its expected version, and optionally a new snapshot of it. A few committer tasks
//!   ([`COMMITTERS`]) each take every append queued at that moment (up to [`MAX_EVENTS`] events)
//!   and write them with one `INSERT ... SELECT FROM unnest(...)` and one commit: one round trip
//!   and one WAL flush for many requests, whatever their blocks. Each writer is answered only
//!   after that commit is durable (`synchronous_commit` as the database is configured).
//! - Optimistic versioning stays the arbiter: the events table's primary key (type, id,
//!   sequence) refuses a second writer of the same version, and postgres-es reads the same rows.
//!   A shared transaction that hits a conflict is rolled back and its appends are written one
//!   transaction each, so only the loser is told [`AppendError::Conflict`] (and reloads).
//! - Any other failure answers every append of the transaction [`AppendError::Unavailable`]: the
//!   outcome may be unknown (a connection lost during `COMMIT`), so writers drop what they hold in
//!   memory and reload before their next decision.
//! - Snapshots are written in the same transaction as the events they cover, in postgres-es' row
//!   format (one row per aggregate, `current_snapshot` counting snapshots), so cqrs-es and
//!   [`crate::store::EventStore::load`] read them as before.
//! - Why not postgres-es' `persist`: it writes one aggregate per transaction with one statement per
//!   event. The rows are the same; only the batching is ours.
//! - The queue is bounded ([`QUEUE`] appends): when full, a writer waits for room (its own queue,
//!   which is bounded too, then answers callers `Busy`).

use std::sync::{Arc, OnceLock};

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Mutex};

/// Transactions in flight at once (each on its own connection of the pool).
pub const COMMITTERS: usize = 2;
/// Most events written by one transaction.
pub const MAX_EVENTS: usize = 1_000;
/// Appends waiting for a committer.
pub const QUEUE: usize = 4_096;

/// One stored event, serialized as postgres-es stores it.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    pub metadata: serde_json::Value,
}

/// The whole state of an aggregate as of `last_sequence`.
#[derive(Debug, Clone)]
pub struct SnapshotRow {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub last_sequence: i64,
    pub current_snapshot: i64,
    pub payload: serde_json::Value,
}

/// One writer's events, to be written atomically (with the rest of its transaction).
#[derive(Debug, Clone, Default)]
pub struct Append {
    pub events: Vec<EventRow>,
    pub snapshot: Option<SnapshotRow>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error("another writer appended to the aggregate first")]
    Conflict,
    #[error("event store unavailable: {0}")]
    Unavailable(String),
}

struct Pending {
    append: Append,
    reply: oneshot::Sender<Result<(), AppendError>>,
}

/// The shared committers of one event store (started on first use).
pub struct GroupCommit {
    pool: PgPool,
    queue: OnceLock<mpsc::Sender<Pending>>,
}

impl GroupCommit {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            queue: OnceLock::new(),
        }
    }

    /// Writes `append` with whatever else is queued; answers once its transaction committed.
    pub async fn append(&self, append: Append) -> Result<(), AppendError> {
        if append.events.is_empty() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        self.sender()
            .send(Pending { append, reply })
            .await
            .map_err(|_| AppendError::Unavailable("the committers stopped".into()))?;
        answer
            .await
            .map_err(|_| AppendError::Unavailable("a committer stopped before answering".into()))?
    }

    fn sender(&self) -> &mpsc::Sender<Pending> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..COMMITTERS {
                tokio::spawn(committer(self.pool.clone(), rx.clone()));
            }
            tx
        })
    }
}

async fn committer(pool: PgPool, queue: Arc<Mutex<mpsc::Receiver<Pending>>>) {
    loop {
        let batch = {
            let mut rx = queue.lock().await;
            let Some(first) = rx.recv().await else { return };
            let mut events = first.append.events.len();
            let mut batch = vec![first];
            while events < MAX_EVENTS {
                match rx.try_recv() {
                    Ok(next) => {
                        events += next.append.events.len();
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            batch
        };
        commit_batch(&pool, batch).await;
    }
}

async fn commit_batch(pool: &PgPool, batch: Vec<Pending>) {
    let appends: Vec<&Append> = batch.iter().map(|p| &p.append).collect();
    let events: usize = appends.iter().map(|a| a.events.len()).sum();
    metrics::histogram!("seatgrid_group_commit_events").record(events as f64);
    metrics::histogram!("seatgrid_group_commit_appends").record(appends.len() as f64);
    match write(pool, &appends).await {
        Ok(()) => batch.into_iter().for_each(|p| {
            let _ = p.reply.send(Ok(()));
        }),
        Err(e) if is_conflict(&e) && batch.len() > 1 => {
            // Someone else appended to one of them: find who, one transaction each.
            metrics::counter!("seatgrid_group_commit_split_total").increment(1);
            for p in batch {
                let result = write(pool, &[&p.append]).await.map_err(answer);
                let _ = p.reply.send(result);
            }
        }
        Err(e) => {
            let answer = answer(e);
            batch.into_iter().for_each(|p| {
                let _ = p.reply.send(Err(answer.clone()));
            });
        }
    }
}

fn is_conflict(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

fn answer(e: sqlx::Error) -> AppendError {
    if is_conflict(&e) {
        AppendError::Conflict
    } else {
        AppendError::Unavailable(e.to_string())
    }
}

/// One transaction: every event in one statement, then the snapshots.
async fn write(pool: &PgPool, appends: &[&Append]) -> Result<(), sqlx::Error> {
    let rows = appends.iter().flat_map(|a| a.events.iter());
    let mut types = Vec::new();
    let mut ids = Vec::new();
    let mut sequences = Vec::new();
    let mut event_types = Vec::new();
    let mut versions = Vec::new();
    let mut payloads = Vec::new();
    let mut metadata = Vec::new();
    for row in rows {
        types.push(row.aggregate_type.as_str());
        ids.push(row.aggregate_id.as_str());
        sequences.push(row.sequence);
        event_types.push(row.event_type.as_str());
        versions.push(row.event_version.as_str());
        payloads.push(&row.payload);
        metadata.push(&row.metadata);
    }
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                              $6::jsonb[], $7::jsonb[])",
    )
    .bind(types)
    .bind(ids)
    .bind(sequences)
    .bind(event_types)
    .bind(versions)
    .bind(payloads)
    .bind(metadata)
    .execute(&mut *tx)
    .await?;
    for snapshot in appends.iter().filter_map(|a| a.snapshot.as_ref()) {
        sqlx::query(
            "WITH replaced AS (
                 UPDATE snapshots SET last_sequence = $3, current_snapshot = $4, payload = $5
                  WHERE aggregate_type = $1 AND aggregate_id = $2
                 RETURNING 1)
             INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot,
                                    payload)
             SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM replaced)",
        )
        .bind(&snapshot.aggregate_type)
        .bind(&snapshot.aggregate_id)
        .bind(snapshot.last_sequence)
        .bind(snapshot.current_snapshot)
        .bind(&snapshot.payload)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}
