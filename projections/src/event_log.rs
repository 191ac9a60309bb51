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
static READ_AFTER: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} {}", columns("payload", "metadata"), *AFTER));

/// Like [`READ_AFTER`] (the same range read past), but of that range only the events of the
/// aggregate types in `$4` come back, and its last event, with which a reader's checkpoint moves
/// over the rest (its payload and metadata `null` unless it is of `$4`): the order process and the
/// payment relay need orders only, a small share of a sale's log, and were sent every hold's
/// events before, as rows without payloads. `scanned` counts the whole range.
static READ_AFTER_OF: LazyLock<String> = LazyLock::new(|| wanted_of(&AFTER, "$4"));

/// The rest of transaction `$1` after position `$2`, columns as [`READ_AFTER`]'s. Unbounded: a
/// transaction writes at most one group commit's events (`booking::group_commit::MAX_EVENTS`) or
/// one aggregate's.
static REST_OF_TRANSACTION: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} {REST}", columns("payload", "metadata")));

/// [`REST_OF_TRANSACTION`] as [`READ_AFTER_OF`] reads a range, for the aggregate types in `$3`.
static REST_OF_TRANSACTION_OF: LazyLock<String> = LazyLock::new(|| wanted_of(REST, "$3"));

/// [`READ_AFTER`]'s range, from `FROM` on.
static AFTER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "FROM events
          WHERE (transaction_id, position) > ($1::bigint::text::xid8, $2)
            AND {VISIBLE_TO_EVERY_READER}
          ORDER BY transaction_id, position
          LIMIT $3"
    )
});

/// [`REST_OF_TRANSACTION`]'s range, from `FROM` on.
const REST: &str = "FROM events
                     WHERE transaction_id = $1::bigint::text::xid8 AND position > $2
                     ORDER BY position";

/// The columns an [`EventRow`] reads (but `scanned`), payload and metadata as given.
fn columns(payload: &str, metadata: &str) -> String {
    format!(
        "transaction_id::text::bigint AS tx, position, aggregate_type, aggregate_id, sequence,
         event_type, event_version, {payload} AS payload, {metadata} AS metadata, recorded_at"
    )
}

/// Of the range `from` selects (whole rows of `events`, in global order; from `FROM` on), the
/// columns an [`EventRow`] reads for the events of the aggregate types in the `text[]` parameter
/// `types` and for the range's last event (its payload and metadata `null` unless its type is
/// wanted); `scanned` is each row's place in the range, so the last row's is the range's size.
/// One window over the range in its own order (no sort), the payload chosen for the few rows
/// sent: cheaper for PostgreSQL than sending the range, besides what the reader no longer decodes.
fn wanted_of(from: &str, types: &str) -> String {
    let wanted = |column: &str| {
        format!("CASE WHEN aggregate_type = ANY({types}) THEN {column} ELSE 'null' END")
    };
    format!(
        "SELECT {}, n AS scanned
           FROM (SELECT range.*, row_number() OVER w AS n, lead(position) OVER w IS NULL AS last
                   FROM (SELECT * {from}) range
                 WINDOW w AS (ORDER BY transaction_id, position)) s
          WHERE s.aggregate_type = ANY({types}) OR s.last
          ORDER BY s.n",
        columns(&wanted("payload"), &wanted("metadata"))
    )
}

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
    /// How many events the range read past has, every type ([`READ_AFTER_OF`]; not read by
    /// [`READ_AFTER`], whose rows are the range).
    #[sqlx(default)]
    scanned: i64,
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

/// What [`EventLog::read_after_of`] read: the events asked for, the last one of the range always
/// among them (the checkpoint moves to it).
#[derive(Debug)]
pub struct ReadBatch {
    pub events: Vec<RecordedEvent>,
    /// How many events the range read past has (every type): the checkpoint's count moves by it.
    pub scanned: usize,
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
        Ok(self.read_after_of(after, limit, None).await?.events)
    }

    /// Like [`EventLog::read_after`], but of the range read past only the events of `types` come
    /// back (`None`: all), and the range's last event, to move a checkpoint to (its payload and
    /// metadata `null` unless it is of `types`).
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
    ) -> Result<ReadBatch, EventLogError> {
        let types = types.map(<[&str]>::to_vec);
        let (range, rest) = match types {
            Some(_) => (&*READ_AFTER_OF, &*REST_OF_TRANSACTION_OF),
            None => (&*READ_AFTER, &*REST_OF_TRANSACTION),
        };
        let scanned_by = |rows: &[EventRow]| match types {
            Some(_) => rows.last().map_or(0, |r| r.scanned),
            None => rows.len() as i64,
        };
        let mut query = sqlx::query_as(range)
            .bind(after.stored_transaction_id())
            .bind(after.position)
            .bind(limit);
        if let Some(types) = &types {
            query = query.bind(types);
        }
        let mut rows: Vec<EventRow> = query.fetch_all(&self.pool).await?;
        let mut scanned = scanned_by(&rows);
        if let (true, Some(last)) = (scanned >= limit, rows.last()) {
            let mut query = sqlx::query_as(rest).bind(last.tx).bind(last.position);
            if let Some(types) = &types {
                query = query.bind(types);
            }
            let rest: Vec<EventRow> = query.fetch_all(&self.pool).await?;
            scanned += scanned_by(&rest);
            rows.extend(rest);
        }
        Ok(ReadBatch {
            events: rows.into_iter().map(EventRow::recorded).collect(),
            scanned: scanned as usize,
        })
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
