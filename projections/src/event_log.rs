//! The event log: every domain event of every aggregate, in one gap-safe global order.
//!
//! Policy (what a reader may rely on):
//! - Events are read in `(transaction_id, position)` order. `position` is an identity assigned at
//!   insert, and identities become visible out of order when transactions commit out of order, so
//!   "everything above the last position I saw" is not safe on its own.
//! - A reader only ever sees events of transactions older than the oldest transaction still running
//!   ([`VISIBLE_TO_EVERY_READER`], shared with every other reader of the global order in
//!   `migrations::global_order`). Every such transaction has finished, so the set of events below
//!   that line can no longer change, and any event that commits later sorts after everything
//!   already read. Hence: **no event is ever skipped**, and a checkpoint is just the last
//!   [`GlobalPosition`] read.
//! - The price is latency: one long-running transaction holds readers back until it ends. Keep
//!   write transactions short (postgres-es appends in one short transaction).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::types::Json;
use sqlx::PgPool;

pub use migrations::global_order::GlobalPosition;
use migrations::global_order::VISIBLE_TO_EVERY_READER;

/// The events after `($1, $2)` in global order, at most `$3`; built once (the condition is shared).
/// Payloads and metadata come for the events of the aggregate types in `$4` only (all when it is
/// null; the others' are `null`): every event is still read in order, so a checkpoint moves past
/// the events a reader does not need, but they are neither sent in full nor decoded.
static READ_AFTER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {}
           FROM events
          WHERE (transaction_id, position) > ($1::bigint::text::xid8, $2)
            AND {VISIBLE_TO_EVERY_READER}
          ORDER BY transaction_id, position
          LIMIT $3",
        columns("$4")
    )
});

/// The columns an [`EventRow`] reads, with payload and metadata only for the aggregate types in
/// the `text[]` parameter `types` (all when it is null).
fn columns(types: &str) -> String {
    format!(
        "transaction_id::text::bigint AS tx, position, aggregate_type, aggregate_id,
         sequence, event_type, event_version,
         CASE WHEN {types}::text[] IS NULL OR aggregate_type = ANY({types}) THEN payload
              ELSE 'null' END AS payload,
         CASE WHEN {types}::text[] IS NULL OR aggregate_type = ANY({types}) THEN metadata
              ELSE 'null' END AS metadata,
         recorded_at"
    )
}

/// The rest of transaction `$1` after position `$2`, columns as [`READ_AFTER`]'s. Unbounded: a
/// transaction writes at most one group commit's events (`booking::group_commit::MAX_EVENTS`) or
/// one aggregate's.
static REST_OF_TRANSACTION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {}
           FROM events
          WHERE transaction_id = $1::bigint::text::xid8 AND position > $2
          ORDER BY position",
        columns("$3")
    )
});

#[derive(Debug, Clone)]
pub struct RecordedEvent {
    pub global: GlobalPosition,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// The payload's JSON text as stored: decoded once, straight into the typed event, by
    /// [`domain::StoredEvent::decode`] (`null` for the types a reader asked not to receive).
    pub payload: Box<RawValue>,
    /// The metadata's JSON text (read for its trace context by [`crate::tracing_context`]).
    pub metadata: Box<RawValue>,
    pub recorded_at: DateTime<Utc>,
}

/// A row as [`READ_AFTER`] reads it.
#[derive(sqlx::FromRow)]
struct EventRow {
    tx: i64,
    position: i64,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Json<Box<RawValue>>,
    metadata: Json<Box<RawValue>>,
    recorded_at: DateTime<Utc>,
}

impl EventRow {
    fn recorded(self) -> RecordedEvent {
        RecordedEvent {
            global: GlobalPosition::from_stored(self.tx, self.position),
            aggregate_type: self.aggregate_type,
            aggregate_id: self.aggregate_id,
            sequence: self.sequence,
            event_type: self.event_type,
            event_version: self.event_version,
            payload: self.payload.0,
            metadata: self.metadata.0,
            recorded_at: self.recorded_at,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error("event store unavailable: {0}")]
    Database(#[from] sqlx::Error),
}

/// Reads the event store in global order.
#[derive(Debug, Clone)]
pub struct EventLog {
    pool: PgPool,
}

impl EventLog {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Up to `limit` events after `after`, in global order, never skipping one that commits later.
    pub async fn read_after(
        &self,
        after: GlobalPosition,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, EventLogError> {
        self.read_after_of(after, limit, None).await
    }

    /// Like [`EventLog::read_after`], with payloads and metadata for the events of `types` only
    /// (`None`: all; the others' are `null`).
    ///
    /// A batch ends with a whole transaction: when `limit` cuts one, the rest of it comes too. A
    /// group commit's events (a hold's seat block and allowance events among them) are then
    /// applied together, and a hold's read-model row is written once per batch instead of once
    /// per half (1.7 writes a hold under the durable-holds benchmark before). The rest of a
    /// transaction already read from is visible: it committed as a whole.
    pub async fn read_after_of(
        &self,
        after: GlobalPosition,
        limit: i64,
        types: Option<&[&str]>,
    ) -> Result<Vec<RecordedEvent>, EventLogError> {
        let types = types.map(<[&str]>::to_vec);
        let mut rows: Vec<EventRow> = sqlx::query_as(&READ_AFTER)
            .bind(after.stored_transaction_id())
            .bind(after.position)
            .bind(limit)
            .bind(&types)
            .fetch_all(&self.pool)
            .await?;
        if let (true, Some(last)) = (rows.len() as i64 >= limit, rows.last()) {
            let rest: Vec<EventRow> = sqlx::query_as(&REST_OF_TRANSACTION)
                .bind(last.tx)
                .bind(last.position)
                .bind(&types)
                .fetch_all(&self.pool)
                .await?;
            rows.extend(rest);
        }
        Ok(rows.into_iter().map(EventRow::recorded).collect())
    }

    /// Every event readable now, in global order (for replays and checks; loads them all).
    pub async fn read_all(&self) -> Result<Vec<RecordedEvent>, EventLogError> {
        let mut all = Vec::new();
        let mut after = GlobalPosition::START;
        loop {
            let batch = self.read_after(after, 5_000).await?;
            match batch.last() {
                None => return Ok(all),
                Some(last) => after = last.global,
            }
            all.extend(batch);
        }
    }
}
