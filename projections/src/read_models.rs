//! The booking read models and the projection that maintains them.
//!
//! Durable in Postgres (the truth the cache is refilled from):
//! - `rm_events`: every ticketed event with its definition, in creation order;
//! - `rm_seat_maps`: per event, the seat map in the compact encoding the API serves (one character
//!   per seat id: `A` available, `H` held, `B` booked), with a version;
//! - `rm_holds`: every hold with its status, seats and expiry (per customer by index).
//!
//! Policy:
//! - Every change of a seat map or a hold takes a fresh version from one never-resetting sequence, so
//!   a cached copy can always tell whether it is older than the durable row (see [`crate::cache`]).
//! - Apply is idempotent: events at or below the last applied sequence of their aggregate are
//!   skipped (`rm_applied`), and the whole batch commits with the checkpoint.
//! - A hold's stored status follows its events. Its *effective* status also honours lazy expiry:
//!   a hold still `held` after `expires_at` is `expired` ([`HoldRecord::status_at`]). Seats of such a
//!   hold show `held` in the seat map until the sweeper records `HoldExpired` (at most the sweep
//!   interval plus projection lag).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    CustomerAllowanceEvent, EventDefinition, ReturnReason, SeatBlockEvent, TicketedEventEvent,
};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::cache::Cache;
use crate::event_log::RecordedEvent;
use crate::runner::{Projection, ProjectionError};

/// The checkpoint name of the booking read models.
pub const READ_MODELS: &str = "read_models";

pub const AVAILABLE: u8 = b'A';
pub const HELD: u8 = b'H';
pub const BOOKED: u8 = b'B';

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldState {
    /// Allowance reserved, seats not (all) taken yet.
    Pending,
    Held,
    Booked,
    Released,
    Expired,
    /// Never took effect: some seats were not available and what was taken was given back.
    Failed,
}

impl HoldState {
    /// No further change will happen.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Held)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRecord {
    pub hold_id: Uuid,
    pub event_id: Uuid,
    pub customer_id: String,
    pub status: HoldState,
    pub seats: Vec<i32>,
    pub held_seats: i32,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl HoldRecord {
    /// The status as of `now`: a hold not booked by its expiry is over, written down or not.
    pub fn status_at(&self, now: DateTime<Utc>) -> HoldState {
        match self.status {
            HoldState::Held if now >= self.expires_at => HoldState::Expired,
            HoldState::Pending if now >= self.expires_at => HoldState::Failed,
            s => s,
        }
    }
}

/// An event's seat map: one byte per seat id (`A`, `H`, `B`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatMap {
    pub event_id: Uuid,
    pub seats: Vec<u8>,
    pub version: i64,
}

impl SeatMap {
    /// (available, held, booked) among `range` of seat ids.
    pub fn counts(&self, range: std::ops::Range<usize>) -> (u32, u32, u32) {
        let end = range.end.min(self.seats.len());
        let start = range.start.min(end);
        self.seats[start..end]
            .iter()
            .fold((0, 0, 0), |(a, h, b), s| match *s {
                HELD => (a, h + 1, b),
                BOOKED => (a, h, b + 1),
                _ => (a + 1, h, b),
            })
    }
}

/// Seat status changes of one event from one committed batch, as cached and published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatUpdate {
    pub event_id: Uuid,
    /// The seat map's version before and after this batch.
    pub from_version: i64,
    pub version: i64,
    /// `(seat_id, status)` in the order they happened; a seat may appear more than once.
    pub changes: Vec<(u32, char)>,
    /// (available, held, booked) after the batch.
    #[serde(skip)]
    pub counts: (u32, u32, u32),
}

/// A ticketed event as listed.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub definition: EventDefinition,
    pub seat_count: i32,
    pub list_order: i64,
}

/// What a committed batch hands to the cache.
#[derive(Debug, Default)]
pub struct ReadModelChanges {
    pub seats: Vec<SeatUpdate>,
    pub holds: Vec<HoldRecord>,
}

/// Maintains the booking read models; with a cache, writes through to Redis and publishes every
/// change on Redis pub/sub after commit.
pub struct ReadModelProjection {
    cache: Option<Cache>,
    /// Changes whose cache write failed (Redis down): retried with the next batch.
    unsent: Mutex<Vec<ReadModelChanges>>,
}

impl ReadModelProjection {
    pub fn new(cache: Option<Cache>) -> Self {
        Self {
            cache,
            unsent: Mutex::new(Vec::new()),
        }
    }
}

enum Fact {
    Created(EventDefinition),
    Block(SeatBlockEvent),
    Allowance(CustomerAllowanceEvent),
}

fn decode(e: &RecordedEvent) -> Result<Option<Fact>, ProjectionError> {
    let corrupt = |reason: serde_json::Error| ProjectionError::Corrupt {
        aggregate_type: e.aggregate_type.clone(),
        aggregate_id: e.aggregate_id.clone(),
        sequence: e.sequence,
        reason: reason.to_string(),
    };
    let payload = e.payload.clone();
    Ok(Some(match e.aggregate_type.as_str() {
        "TicketedEvent" => match serde_json::from_value(payload).map_err(corrupt)? {
            TicketedEventEvent::EventCreated(d) => Fact::Created(d),
        },
        "SeatBlock" => Fact::Block(serde_json::from_value(payload).map_err(corrupt)?),
        "CustomerAllowance" => Fact::Allowance(serde_json::from_value(payload).map_err(corrupt)?),
        _ => return Ok(None),
    }))
}

#[async_trait]
impl Projection for ReadModelProjection {
    type AfterCommit = ReadModelChanges;

    fn name(&self) -> &'static str {
        READ_MODELS
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<ReadModelChanges, ProjectionError> {
        let fresh = skip_redelivered(tx, events).await?;
        let mut facts = Vec::with_capacity(fresh.len());
        for e in &fresh {
            if let Some(f) = decode(e)? {
                facts.push(f);
            }
        }
        for fact in &facts {
            if let Fact::Created(d) = fact {
                create_event(tx, d).await?;
            }
        }
        let seats = apply_seats(tx, &facts).await?;
        let holds = apply_holds(tx, &facts).await?;
        Ok(ReadModelChanges { seats, holds })
    }

    async fn after_commit(&self, changes: ReadModelChanges) {
        for update in &changes.seats {
            let event = update.event_id.to_string();
            let (available, held, booked) = update.counts;
            for (status, n) in [("available", available), ("held", held), ("booked", booked)] {
                metrics::gauge!("seatgrid_event_seats", "event_id" => event.clone(), "status" => status)
                    .set(f64::from(n));
            }
        }
        let Some(cache) = &self.cache else { return };
        let mut pending = std::mem::take(&mut *self.unsent.lock().expect("unsent lock"));
        pending.push(changes);
        let mut failed = Vec::new();
        for changes in pending {
            if let Err(e) = cache.write_through(&changes).await {
                tracing::warn!(error = %e, "cache write failed; will retry with the next batch");
                failed.push(changes);
            }
        }
        // Bounded: if Redis stays away, readers fall back to Postgres and the head markers that
        // would tell them so are rewritten as soon as it is back.
        failed.truncate(1_000);
        *self.unsent.lock().expect("unsent lock") = failed;
    }

    async fn reset(&self, tx: &mut PgConnection) -> Result<(), ProjectionError> {
        sqlx::query("TRUNCATE rm_events, rm_seat_maps, rm_holds, rm_applied")
            .execute(tx)
            .await?;
        Ok(())
    }
}

/// Drops events at or below the sequence already applied for their aggregate, and records the new
/// high-water marks.
async fn skip_redelivered<'a>(
    tx: &mut PgConnection,
    events: &'a [RecordedEvent],
) -> Result<Vec<&'a RecordedEvent>, ProjectionError> {
    let keys: HashSet<(&str, &str)> = events
        .iter()
        .map(|e| (e.aggregate_type.as_str(), e.aggregate_id.as_str()))
        .collect();
    let (types, ids): (Vec<&str>, Vec<&str>) = keys.into_iter().unzip();
    // One index lookup per key (a lateral join; `LIMIT 1`, true of a primary key, keeps Postgres
    // from flattening it): a plain join with the unnested keys gets a hash join over all of
    // rm_applied when first planned on a young table, and the connection keeps that plan as the
    // table grows.
    let rows = sqlx::query(
        "SELECT a.aggregate_type, a.aggregate_id, a.sequence
           FROM unnest($1::text[], $2::text[]) AS k(t, i)
          CROSS JOIN LATERAL (
                SELECT aggregate_type, aggregate_id, sequence FROM rm_applied
                 WHERE aggregate_type = k.t AND aggregate_id = k.i LIMIT 1) a",
    )
    .bind(&types)
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut applied: HashMap<(String, String), i64> = HashMap::new();
    for row in rows {
        applied.insert(
            (row.try_get("aggregate_type")?, row.try_get("aggregate_id")?),
            row.try_get("sequence")?,
        );
    }
    let mut fresh = Vec::with_capacity(events.len());
    for e in events {
        let key = (e.aggregate_type.clone(), e.aggregate_id.clone());
        let last = applied.entry(key).or_insert(0);
        if e.sequence > *last {
            *last = e.sequence;
            fresh.push(e);
        }
    }
    let (mut t, mut i, mut s) = (Vec::new(), Vec::new(), Vec::new());
    for ((ty, id), seq) in applied {
        t.push(ty);
        i.push(id);
        s.push(seq);
    }
    sqlx::query(
        "INSERT INTO rm_applied (aggregate_type, aggregate_id, sequence)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
         ON CONFLICT (aggregate_type, aggregate_id)
         DO UPDATE SET sequence = GREATEST(rm_applied.sequence, EXCLUDED.sequence)",
    )
    .bind(&t)
    .bind(&i)
    .bind(&s)
    .execute(&mut *tx)
    .await?;
    Ok(fresh)
}

async fn create_event(tx: &mut PgConnection, d: &EventDefinition) -> Result<(), ProjectionError> {
    let seat_count: u32 = d
        .layout
        .sections
        .iter()
        .flat_map(|s| &s.rows)
        .map(|r| r.seats)
        .sum();
    let definition = serde_json::to_value(d).expect("a definition serializes");
    sqlx::query(
        "INSERT INTO rm_events (event_id, definition, seat_count, created_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(d.event_id.0)
    .bind(definition)
    .bind(seat_count as i32)
    .bind(d.created_at)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO rm_seat_maps (event_id, seats, version)
         VALUES ($1, repeat('A', $2), nextval('read_model_version')) ON CONFLICT DO NOTHING",
    )
    .bind(d.event_id.0)
    .bind(seat_count as i32)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn seat_status(e: &SeatBlockEvent) -> u8 {
    match e {
        SeatBlockEvent::SeatHeld(_) => HELD,
        SeatBlockEvent::SeatBooked(_) => BOOKED,
        SeatBlockEvent::SeatReleased(_) | SeatBlockEvent::HoldExpired(_) => AVAILABLE,
    }
}

async fn apply_seats(
    tx: &mut PgConnection,
    facts: &[Fact],
) -> Result<Vec<SeatUpdate>, ProjectionError> {
    let mut changes: BTreeMap<Uuid, Vec<(u32, char)>> = BTreeMap::new();
    for fact in facts {
        if let Fact::Block(e) = fact {
            let status = seat_status(e) as char;
            let list = changes.entry(e.change().event_id.0).or_default();
            list.extend(e.change().seats.iter().map(|s| (s.0, status)));
        }
    }
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = changes.keys().copied().collect();
    let rows = sqlx::query(
        "SELECT event_id, seats, version FROM rm_seat_maps WHERE event_id = ANY($1) FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut updates = Vec::with_capacity(rows.len());
    for row in rows {
        let event_id: Uuid = row.try_get("event_id")?;
        let mut seats = row.try_get::<String, _>("seats")?.into_bytes();
        let from_version: i64 = row.try_get("version")?;
        let list = changes.remove(&event_id).unwrap_or_default();
        for (seat, status) in &list {
            if let Some(s) = seats.get_mut(*seat as usize) {
                *s = *status as u8;
            }
        }
        let counts = SeatMap {
            event_id,
            seats: seats.clone(),
            version: from_version,
        }
        .counts(0..seats.len());
        let seats = String::from_utf8(seats).expect("seat maps hold ASCII only");
        let version: i64 = sqlx::query_scalar(
            "UPDATE rm_seat_maps SET seats = $2, version = nextval('read_model_version')
              WHERE event_id = $1 RETURNING version",
        )
        .bind(event_id)
        .bind(seats)
        .fetch_one(&mut *tx)
        .await?;
        updates.push(SeatUpdate {
            event_id,
            from_version,
            version,
            changes: list,
            counts,
        });
    }
    for (event_id, _) in changes {
        tracing::warn!(%event_id, "seat events for an event the read model does not know; skipped");
    }
    Ok(updates)
}

fn hold_row(row: &sqlx::postgres::PgRow) -> Result<HoldRecord, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(HoldRecord {
        hold_id: row.try_get("hold_id")?,
        event_id: row.try_get("event_id")?,
        customer_id: row.try_get("customer_id")?,
        status: serde_json::from_value(serde_json::Value::String(status))
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        seats: row.try_get("seats")?,
        held_seats: row.try_get("held_seats")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        version: row.try_get("version")?,
    })
}

pub(crate) const HOLD_COLUMNS: &str = "hold_id, event_id, customer_id, status, seats, held_seats, \
                                       expires_at, created_at, updated_at, version";

pub(crate) fn hold_rows(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<HoldRecord>, sqlx::Error> {
    rows.iter().map(hold_row).collect()
}

async fn apply_holds(
    tx: &mut PgConnection,
    facts: &[Fact],
) -> Result<Vec<HoldRecord>, ProjectionError> {
    let hold_ids: Vec<Uuid> = facts
        .iter()
        .filter_map(|f| match f {
            Fact::Block(e) => Some(e.change().hold_id.0),
            Fact::Allowance(a) => Some(allowance_change(a).hold_id.0),
            Fact::Created(_) => None,
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if hold_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(&format!(
        "SELECT {HOLD_COLUMNS} FROM rm_holds WHERE hold_id = ANY($1) FOR UPDATE"
    ))
    .bind(&hold_ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut holds: HashMap<Uuid, HoldRecord> = hold_rows(&rows)?
        .into_iter()
        .map(|h| (h.hold_id, h))
        .collect();
    let mut touched = Vec::new();
    for fact in facts {
        let (change, transition) = match fact {
            Fact::Created(_) => continue,
            Fact::Block(e) => (e.change(), Transition::Block(e)),
            Fact::Allowance(a) => (allowance_change(a), Transition::Allowance(a)),
        };
        let hold = holds.entry(change.hold_id.0).or_insert_with(|| HoldRecord {
            hold_id: change.hold_id.0,
            event_id: change.event_id.0,
            customer_id: change.customer_id.to_string(),
            status: HoldState::Pending,
            seats: Vec::new(),
            held_seats: 0,
            expires_at: change.expires_at,
            created_at: change.at,
            updated_at: change.at,
            version: 0,
        });
        transition.apply(hold);
        hold.updated_at = change.at;
        touched.push(hold.hold_id);
    }
    let dirty: Vec<&HoldRecord> = touched
        .iter()
        .collect::<HashSet<_>>()
        .into_iter()
        .map(|id| &holds[id])
        .collect();
    let json = serde_json::to_value(&dirty).expect("holds serialize");
    let rows = sqlx::query(&format!(
        "INSERT INTO rm_holds ({HOLD_COLUMNS})
         SELECT hold_id, event_id, customer_id, status, seats, held_seats, expires_at, created_at,
                updated_at, nextval('read_model_version')
           FROM jsonb_populate_recordset(NULL::rm_holds, $1)
         ON CONFLICT (hold_id) DO UPDATE
            SET status = EXCLUDED.status, seats = EXCLUDED.seats, held_seats = EXCLUDED.held_seats,
                expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at,
                version = EXCLUDED.version
         RETURNING {HOLD_COLUMNS}"
    ))
    .bind(json)
    .fetch_all(&mut *tx)
    .await?;
    Ok(hold_rows(&rows)?)
}

fn allowance_change(a: &CustomerAllowanceEvent) -> &domain::HoldChange {
    match a {
        CustomerAllowanceEvent::AllowanceReserved(c)
        | CustomerAllowanceEvent::AllowanceCommitted(c)
        | CustomerAllowanceEvent::AllowanceReturned { change: c, .. } => c,
    }
}

enum Transition<'a> {
    Block(&'a SeatBlockEvent),
    Allowance(&'a CustomerAllowanceEvent),
}

impl Transition<'_> {
    /// A hold's status machine. Final states stay final, except that a booking wins over
    /// anything but a failure (a booking is only recorded for a live hold).
    fn apply(&self, hold: &mut HoldRecord) {
        use HoldState::*;
        match self {
            Self::Allowance(CustomerAllowanceEvent::AllowanceReserved(c)) => {
                hold.seats = c.seats.iter().map(|s| s.0 as i32).collect();
                hold.expires_at = c.expires_at;
            }
            Self::Allowance(CustomerAllowanceEvent::AllowanceCommitted(_)) => {}
            Self::Allowance(CustomerAllowanceEvent::AllowanceReturned { reason, .. }) => {
                match reason {
                    ReturnReason::HoldFailed if hold.status != Booked => hold.status = Failed,
                    ReturnReason::Released if !hold.status.is_final() => hold.status = Released,
                    _ => {}
                }
            }
            Self::Block(SeatBlockEvent::SeatHeld(c)) => {
                hold.held_seats += c.seats.len() as i32;
                if hold.seats.is_empty() {
                    hold.seats = c.seats.iter().map(|s| s.0 as i32).collect();
                }
                if hold.status == Pending && hold.held_seats as usize >= hold.seats.len() {
                    hold.status = Held;
                }
            }
            Self::Block(SeatBlockEvent::SeatBooked(_)) => {
                if hold.status != Failed {
                    hold.status = Booked;
                }
            }
            Self::Block(SeatBlockEvent::SeatReleased(_)) => {
                if !hold.status.is_final() {
                    hold.status = Released;
                }
            }
            Self::Block(SeatBlockEvent::HoldExpired(_)) => {
                if !hold.status.is_final() {
                    hold.status = Expired;
                }
            }
        }
    }
}
