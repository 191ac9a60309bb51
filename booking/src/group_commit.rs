//! Group commit: the appends of many aggregate writers in one transaction.
//!
//! Policy:
//! - A writer ([`crate::writers`]) hands over one [`Append`]: the events of one aggregate, numbered
//!   from its expected version, and optionally a new snapshot of it. A few committer tasks
//!   ([`COMMITTERS`]) each take every append queued at that moment (up to [`MAX_EVENTS`] events)
//!   and write them with one `INSERT ... SELECT FROM unnest(...)` and one commit per event they
//!   touch: one round trip and one WAL flush for many requests, whatever their blocks. No
//!   transaction spans two events, so the store can be sharded by event (docs/SCALING.md). Each writer is answered only
//!   after that commit is durable (`synchronous_commit` as the database is configured).
//! - Optimistic versioning stays the arbiter: the events table's primary key (type, id,
//!   sequence) refuses a second writer of the same version, and postgres-es reads the same rows.
//!   The insert skips rows whose version is taken (`ON CONFLICT DO NOTHING`) and returns the rows
//!   it wrote; an append that did not get all its rows is a loser: the rows it did get are
//!   deleted in the same transaction, the others commit, and only the loser is told it lost (and
//!   reloads). A conflict costs one skipped row, not the batch.
//! - Any other failure answers every append of the transaction [`AppendError::Unavailable`]: the
//!   outcome may be unknown (a connection lost during `COMMIT`), so writers drop what they hold in
//!   memory and reload before their next decision.
//! - Snapshots are written in the same transaction as the events they cover, in postgres-es' row
//!   format (one row per aggregate, `current_snapshot` counting snapshots), so cqrs-es and
//!   [`crate::store::EventStore::load`] read them as before.
//! - Why not postgres-es' `persist`: it writes one aggregate per transaction with one statement per
//!   event. The rows are the same; only the batching is ours.
//! - Linked appends ([`GroupCommit::append_unit`]): several aggregates' appends that must commit
//!   together or not at all (a hold's allowance reservation and its seat block's events,
//!   [`crate::linked`]). They go in one transaction, and if any of them loses its version race,
//!   none of their rows stay; the answer says which of them lost.
//! - The queue is bounded ([`QUEUE`] appends): when full, a writer waits for room (its own queue,
//!   which is bounded too, then answers callers `Busy`).

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use serde_json::value::RawValue;
use sqlx::types::Json;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Mutex};

/// Transactions in flight at once (each on its own connection of the pool).
pub const COMMITTERS: usize = 2;
/// Most events written by one transaction.
pub const MAX_EVENTS: usize = 1_000;
/// Appends waiting for a committer.
pub const QUEUE: usize = 4_096;

/// One stored event, serialized as postgres-es stores it. Payload and metadata are JSON text,
/// serialized once from the typed values (no `serde_json::Value` tree) and sent as they are.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Box<RawValue>,
    pub metadata: Box<RawValue>,
}

/// The whole state of an aggregate as of `last_sequence`.
#[derive(Debug, Clone)]
pub struct SnapshotRow {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub last_sequence: i64,
    pub current_snapshot: i64,
    pub payload: Box<RawValue>,
}

/// One writer's events, to be written atomically (with the rest of its transaction).
#[derive(Debug, Clone, Default)]
pub struct Append {
    pub events: Vec<EventRow>,
    pub snapshot: Option<SnapshotRow>,
}

/// A transaction that failed (a lost version race is an answer, not an error:
/// [`GroupCommit::append_unit`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error("event store unavailable: {0}")]
    Unavailable(String),
}

/// Appends written all or none, and who to tell which of them lost a version race.
struct Pending {
    unit: Vec<Append>,
    reply: oneshot::Sender<Result<Vec<bool>, AppendError>>,
}

impl Pending {
    fn events(&self) -> usize {
        self.unit.iter().map(|a| a.events.len()).sum()
    }
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

    /// Writes the appends of `unit` (one writer's, and any linked to it) with whatever else is
    /// queued, in one transaction, all or none (the events of one ticketed event only). Answers,
    /// once that transaction committed, which of them lost a version race: none, and all were
    /// written; any, and none of them was.
    pub async fn append_unit(&self, unit: Vec<Append>) -> Result<Vec<bool>, AppendError> {
        if unit.iter().all(|a| a.events.is_empty()) {
            return Ok(vec![false; unit.len()]);
        }
        let (reply, answer) = oneshot::channel();
        self.sender()
            .send(Pending { unit, reply })
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
            let mut events = first.events();
            let mut batch = vec![first];
            while events < MAX_EVENTS {
                match rx.try_recv() {
                    Ok(next) => {
                        events += next.events();
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

/// The event an aggregate belongs to: the first 36 characters of its id (the stored `event_key`).
fn event_key(pending: &Pending) -> &str {
    let id = pending
        .unit
        .iter()
        .find_map(|a| a.events.first())
        .map_or("", |e| e.aggregate_id.as_str());
    id.get(..36).unwrap_or(id)
}

/// Writes `batch` as one transaction per event it touches (usually one: a sale's requests are for
/// one event), so that no transaction spans two events and the store can be sharded by event.
async fn commit_batch(pool: &PgPool, batch: Vec<Pending>) {
    let mut groups: Vec<Vec<Pending>> = Vec::new();
    for pending in batch {
        let key = event_key(&pending);
        match groups.iter_mut().find(|g| event_key(&g[0]) == key) {
            Some(group) => group.push(pending),
            None => groups.push(vec![pending]),
        }
    }
    for group in groups {
        commit_event(pool, group).await;
    }
}

async fn commit_event(pool: &PgPool, batch: Vec<Pending>) {
    let units: Vec<&[Append]> = batch.iter().map(|p| p.unit.as_slice()).collect();
    let events: usize = batch.iter().map(Pending::events).sum();
    metrics::histogram!("seatgrid_group_commit_events").record(events as f64);
    metrics::histogram!("seatgrid_group_commit_appends")
        .record(units.iter().map(|u| u.len()).sum::<usize>() as f64);
    match write(pool, &units).await {
        Ok(lost) => {
            if lost.iter().flatten().any(|l| *l) {
                metrics::counter!("seatgrid_group_commit_conflicts_total").increment(1);
            }
            for (p, lost) in batch.into_iter().zip(lost) {
                let _ = p.reply.send(Ok(lost));
            }
        }
        Err(e) => {
            let answer = AppendError::Unavailable(e.to_string());
            batch.into_iter().for_each(|p| {
                let _ = p.reply.send(Err(answer.clone()));
            });
        }
    }
}

/// One transaction: every event in one statement, then the snapshots in one more. Answers, for
/// each append of each unit, whether it lost a version race (a unit with a loser wrote nothing).
async fn write(pool: &PgPool, units: &[&[Append]]) -> Result<Vec<Vec<bool>>, sqlx::Error> {
    let rows = units
        .iter()
        .flat_map(|u| u.iter())
        .flat_map(|a| a.events.iter());
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
        payloads.push(Json(&*row.payload));
        metadata.push(Json(&*row.metadata));
    }
    let mut tx = migrations::transaction::begin(pool).await?;
    let written: Vec<(String, String, i64)> = sqlx::query_as(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                              $6::jsonb[], $7::jsonb[])
         ON CONFLICT DO NOTHING
         RETURNING aggregate_type, aggregate_id, sequence",
    )
    .bind(types)
    .bind(ids)
    .bind(sequences)
    .bind(event_types)
    .bind(versions)
    .bind(payloads)
    .bind(metadata)
    .fetch_all(&mut *tx)
    .await?;
    let written: HashSet<(String, String, i64)> = written.into_iter().collect();
    let lost: Vec<Vec<bool>> = units
        .iter()
        .map(|u| {
            u.iter()
                .map(|a| a.events.iter().any(|row| !written.contains(&key(row))))
                .collect()
        })
        .collect();
    let unit_lost: Vec<bool> = lost.iter().map(|l| l.contains(&true)).collect();
    // The rows of a unit with a loser that did go in (the loser's later versions, the others'
    // rows) come out again.
    let undo: Vec<&EventRow> = units
        .iter()
        .zip(&unit_lost)
        .filter(|(_, lost)| **lost)
        .flat_map(|(u, _)| u.iter().flat_map(|a| a.events.iter()))
        .filter(|row| written.contains(&key(row)))
        .collect();
    if !undo.is_empty() {
        let ids: Vec<&str> = undo.iter().map(|r| r.aggregate_id.as_str()).collect();
        let types: Vec<&str> = undo.iter().map(|r| r.aggregate_type.as_str()).collect();
        let sequences: Vec<i64> = undo.iter().map(|r| r.sequence).collect();
        sqlx::query(
            "DELETE FROM events e USING unnest($1::text[], $2::text[], $3::bigint[]) AS u(t, i, s)
              WHERE e.aggregate_type = u.t AND e.aggregate_id = u.i AND e.sequence = u.s",
        )
        .bind(types)
        .bind(ids)
        .bind(sequences)
        .execute(&mut *tx)
        .await?;
    }
    // The kept units' snapshots in one statement (a writer has one append in flight, so an
    // aggregate appears at most once): replace the aggregate's row, or add it.
    let kept = units
        .iter()
        .zip(&unit_lost)
        .filter(|(_, lost)| !**lost)
        .flat_map(|(u, _)| u.iter());
    let (mut types, mut ids, mut lasts, mut currents, mut payloads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for snapshot in kept.filter_map(|a| a.snapshot.as_ref()) {
        types.push(snapshot.aggregate_type.as_str());
        ids.push(snapshot.aggregate_id.as_str());
        lasts.push(snapshot.last_sequence);
        currents.push(snapshot.current_snapshot);
        payloads.push(Json(&*snapshot.payload));
    }
    if !types.is_empty() {
        sqlx::query(
            "WITH s AS (
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[],
                                      $5::jsonb[]) AS s(t, i, last, current, payload)),
             replaced AS (
                 UPDATE snapshots
                    SET last_sequence = s.last, current_snapshot = s.current, payload = s.payload
                   FROM s
                  WHERE snapshots.aggregate_type = s.t AND snapshots.aggregate_id = s.i
                 RETURNING snapshots.aggregate_type AS t, snapshots.aggregate_id AS i)
             INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot,
                                    payload)
             SELECT t, i, last, current, payload FROM s
              WHERE NOT EXISTS (SELECT 1 FROM replaced r WHERE r.t = s.t AND r.i = s.i)",
        )
        .bind(types)
        .bind(ids)
        .bind(lasts)
        .bind(currents)
        .bind(payloads)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(lost)
}

fn key(row: &EventRow) -> (String, String, i64) {
    (
        row.aggregate_type.clone(),
        row.aggregate_id.clone(),
        row.sequence,
    )
}
