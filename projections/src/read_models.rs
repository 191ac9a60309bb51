//! The booking read models and the projection that maintains them.
//!
//! Durable in Postgres (the truth the cache is refilled from):
//! - `rm_events`: every ticketed event with its definition, in creation order;
//! - `rm_seat_maps` and `rm_seat_map_chunks`: per event, the seat map in the compact encoding the
//!   API serves (one character per seat id: `A` available, `H` held, `B` booked), with a version
//!   and counts, stored in chunks of 1,000 seats ([`crate::seat_maps`]);
//! - `rm_holds`: every hold with its status, seats and expiry (per customer by index);
//! - `rm_orders`: every order with its status ([`crate::orders`]).
//!
//! Policy:
//! - Every change of a seat map or a hold takes a fresh version from one never-resetting sequence, so
//!   a cached copy can always tell whether it is older than the durable row (see [`crate::cache`]).
//! - Apply is idempotent: events at or below the last applied sequence of their aggregate are
//!   skipped (`rm_applied`), and the whole batch commits with the checkpoint. Allowance events
//!   are not tracked there: they only set a hold's seats, expiry and status, which applying one
//!   again leaves as they are (the hold lifecycle, [`HoldTrack::apply`]), and a flash sale has
//!   one allowance per buyer, so tracking them was one `rm_applied` row written and looked up
//!   per hold.
//! - Events are decoded by the domain's one decoder ([`domain::StoredEvent`]) and a hold's status
//!   follows the domain's one lifecycle ([`domain::HoldTrack`]). Its *effective* status also
//!   honours lazy expiry ([`HoldRecord::status_at`]). Seats of an expired hold show `held` in the
//!   seat map until the sweeper records `HoldExpired` (at most the sweep interval plus projection
//!   lag).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use domain::{EventDefinition, HoldTrack, StoredEvent};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::cache::Cache;
use crate::event_log::RecordedEvent;
use crate::lookup::by_keys;
use crate::orders::apply_orders;
use crate::records::{HoldRecord, ReadModelChanges, HOLD_COLUMNS};
use crate::runner::{Projection, ProjectionError};
use crate::seat_maps::{apply_seats, create_seat_map};

/// The checkpoint name of the booking read models.
pub const READ_MODELS: &str = "read_models";

/// Maintains the booking read models; with a cache, writes through to Redis and publishes every
/// change on Redis pub/sub after commit.
///
/// Cached copies whose write-through failed are stale; they are dropped from the cache before the
/// next write (see [`Stale`]), so a reader never trusts them for longer than Redis is unreachable.
pub struct ReadModelProjection {
    cache: Option<Cache>,
    stale: tokio::sync::Mutex<Stale>,
}

/// What the cache may hold stale copies of: the seat maps and holds of batches whose write-through
/// failed, or (after a start, or past [`STALE_TRACKED`] entries) anything.
#[derive(Debug, Default)]
struct Stale {
    everything: bool,
    events: HashSet<Uuid>,
    holds: HashSet<Uuid>,
}

/// Beyond this many stale entries the whole cache is dropped instead (bounded memory).
const STALE_TRACKED: usize = 10_000;

impl Stale {
    fn note(&mut self, changes: &ReadModelChanges) {
        if self.everything {
            return;
        }
        self.events.extend(changes.seats.iter().map(|u| u.event_id));
        self.holds.extend(changes.holds.iter().map(|h| h.hold_id));
        if self.events.len() + self.holds.len() > STALE_TRACKED {
            *self = Self {
                everything: true,
                ..Self::default()
            };
        }
    }

    fn is_clean(&self) -> bool {
        !self.everything && self.events.is_empty() && self.holds.is_empty()
    }

    /// Drops the stale copies from the cache; clean afterwards only if that worked.
    async fn repair(&mut self, cache: &Cache) -> Result<(), redis::RedisError> {
        if self.everything {
            cache.clear().await?;
        } else if !self.is_clean() {
            let events: Vec<Uuid> = self.events.iter().copied().collect();
            let holds: Vec<Uuid> = self.holds.iter().copied().collect();
            cache.forget(&events, &holds).await?;
        }
        *self = Self::default();
        Ok(())
    }
}

impl ReadModelProjection {
    pub fn new(cache: Option<Cache>) -> Self {
        Self {
            cache,
            // A projector that starts cannot tell what its predecessor (perhaps killed between a
            // commit and its cache write) left stale: the first repair drops the whole cache.
            stale: tokio::sync::Mutex::new(Stale {
                everything: true,
                ..Stale::default()
            }),
        }
    }

    /// Drops whatever the cache may hold stale now (at start: everything); retried by the next
    /// batch if Redis cannot be reached.
    pub async fn repair_cache(&self) -> Result<(), redis::RedisError> {
        let Some(cache) = &self.cache else {
            return Ok(());
        };
        self.stale.lock().await.repair(cache).await
    }
}

/// Decodes a recorded event with the domain's decoder; events of aggregates this release does
/// not know are skipped.
fn decode(e: &RecordedEvent) -> Result<Option<StoredEvent>, ProjectionError> {
    StoredEvent::decode(&e.aggregate_type, e.payload.get()).map_err(|reason| {
        ProjectionError::Corrupt {
            aggregate_type: e.aggregate_type.clone(),
            aggregate_id: e.aggregate_id.clone(),
            sequence: e.sequence,
            reason: reason.to_string(),
        }
    })
}

#[async_trait]
impl Projection for ReadModelProjection {
    type AfterCommit = ReadModelChanges;

    fn name(&self) -> &'static str {
        READ_MODELS
    }

    // Every aggregate type: a hold's status follows its allowance too (a failed hold is one whose
    // allowance was returned as failed), so allowance events are not skipped here.

    async fn apply(
        &self,
        tx: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<ReadModelChanges, ProjectionError> {
        let fresh = skip_redelivered(tx, events).await?;
        let mut facts = Vec::with_capacity(fresh.len());
        let mut order_ids = Vec::new();
        for e in &fresh {
            if let Some(f) = decode(e)? {
                if matches!(f, StoredEvent::Order(_)) {
                    order_ids.push((facts.len(), e.aggregate_id.parse::<Uuid>().ok()));
                }
                facts.push(f);
            }
        }
        for fact in &facts {
            if let Some(d) = fact.created_event() {
                create_event(tx, d).await?;
            }
        }
        let seats = apply_seats(tx, &facts).await?;
        let holds = apply_holds(tx, &facts).await?;
        let order_events: Vec<(Uuid, &domain::OrderEvent)> = order_ids
            .into_iter()
            .filter_map(|(i, id)| match (&facts[i], id) {
                (StoredEvent::Order(e), Some(id)) => Some((id, e)),
                _ => None,
            })
            .collect();
        let orders = apply_orders(tx, &order_events).await?;
        Ok(ReadModelChanges {
            seats,
            holds,
            orders,
        })
    }

    async fn after_commit(&self, changes: ReadModelChanges) {
        // Labels take no value from users (no event ids): the series stay few whatever the sales.
        for update in &changes.seats {
            for (_, code) in &update.changes {
                let to = match domain::SeatStatus::from_code(*code as u8) {
                    domain::SeatStatus::Available => "available",
                    domain::SeatStatus::Held => "held",
                    domain::SeatStatus::Booked => "booked",
                };
                metrics::counter!("seatgrid_seat_changes_total", "to" => to).increment(1);
            }
        }
        crate::orders::count(&changes.orders);
        let Some(cache) = &self.cache else { return };
        let mut stale = self.stale.lock().await;
        if let Err(e) = stale.repair(cache).await {
            tracing::warn!(error = %e, "cannot drop stale cached copies yet; will retry");
            stale.note(&changes);
            return;
        }
        if let Err(e) = cache.write_through(&changes).await {
            // Its seat maps and holds may now be stale in the cache (and subscribers missed the
            // change; they notice the version gap and resynchronise): drop them before next time.
            tracing::warn!(error = %e, "cache write failed; its cached copies will be dropped");
            stale.note(&changes);
        }
    }

    async fn reset(&self, tx: &mut PgConnection) -> Result<(), ProjectionError> {
        sqlx::query(
            "TRUNCATE rm_events, rm_seat_maps, rm_seat_map_chunks, rm_holds, rm_orders, rm_applied",
        )
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
        .filter(|e| tracked(e))
        .map(|e| (e.aggregate_type.as_str(), e.aggregate_id.as_str()))
        .collect();
    let (types, ids): (Vec<&str>, Vec<&str>) = keys.into_iter().unzip();
    // One index lookup per key (a lateral join; `LIMIT 1`, true of a primary key, keeps Postgres
    // from flattening it): a plain join with the unnested keys gets a hash join over all of
    // rm_applied when first planned on a young table, and the connection keeps that plan as the
    // table grows.
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
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
    let mut applied: HashMap<(String, String), i64> = rows
        .into_iter()
        .map(|(aggregate_type, aggregate_id, sequence)| ((aggregate_type, aggregate_id), sequence))
        .collect();
    let mut fresh = Vec::with_capacity(events.len());
    for e in events {
        if !tracked(e) {
            fresh.push(e);
            continue;
        }
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

/// Whether applying the event twice could change a read model (see the module policy).
fn tracked(e: &RecordedEvent) -> bool {
    e.aggregate_type != domain::stored::aggregate_type::CUSTOMER_ALLOWANCE
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
    create_seat_map(tx, d.event_id.0, seat_count).await
}

async fn apply_holds(
    tx: &mut PgConnection,
    facts: &[StoredEvent],
) -> Result<Vec<HoldRecord>, ProjectionError> {
    let hold_ids: Vec<Uuid> = facts
        .iter()
        .filter_map(|f| f.hold_change().map(|c| c.hold_id.0))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if hold_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<HoldRecord> = sqlx::query_as(&by_keys(HOLD_COLUMNS, "rm_holds", "hold_id", true))
        .bind(&hold_ids)
        .fetch_all(&mut *tx)
        .await?;
    let mut holds: HashMap<Uuid, HoldRecord> = rows.into_iter().map(|h| (h.hold_id, h)).collect();
    // Each touched hold is followed once through the batch, then written back once.
    let mut tracks: HashMap<Uuid, HoldTrack> = HashMap::new();
    for event in facts.iter().filter_map(StoredEvent::hold_event) {
        let change = event.change();
        let hold = holds
            .entry(change.hold_id.0)
            .or_insert_with(|| HoldRecord::first_seen(change));
        hold.updated_at = change.at;
        tracks
            .entry(hold.hold_id)
            .or_insert_with(|| hold.track())
            .apply(event);
    }
    for (hold_id, track) in &tracks {
        if let Some(hold) = holds.get_mut(hold_id) {
            hold.follow(track);
        }
    }
    let dirty: Vec<&HoldRecord> = tracks.keys().map(|id| &holds[id]).collect();
    // Serialized straight into the statement's parameter (no `serde_json::Value` in between).
    let json = sqlx::types::Json(&dirty);
    let rows = sqlx::query_as(&format!(
        "INSERT INTO rm_holds ({HOLD_COLUMNS})
         SELECT hold_id, event_id, customer_id, status, seats, held_seats, booked_seats,
                expires_at, created_at, updated_at, nextval('read_model_version')
           FROM jsonb_populate_recordset(NULL::rm_holds, $1)
         ON CONFLICT (hold_id, event_id) DO UPDATE
            SET status = EXCLUDED.status, seats = EXCLUDED.seats, held_seats = EXCLUDED.held_seats,
                booked_seats = EXCLUDED.booked_seats, expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at,
                version = EXCLUDED.version
         RETURNING {HOLD_COLUMNS}"
    ))
    .bind(json)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows)
}
