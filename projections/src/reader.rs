//! Reading the booking read models: cache first, Postgres when the cache cannot vouch, refilling the
//! cache on the way. Every call takes a list, so callers (GraphQL DataLoaders) batch naturally.
//!
//! Policy: an unavailable Redis only costs speed. Any cache error is logged once per call and the
//! answer comes from Postgres.

use std::collections::HashMap;

use domain::EventDefinition;
use sqlx::PgPool;
use uuid::Uuid;

use crate::cache::Cache;
use crate::lookup::by_keys;
use crate::records::{EventRecord, HoldRecord, SeatMap, HOLD_COLUMNS};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("read models unavailable: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored read model is unreadable: {0}")]
    Corrupt(String),
}

#[derive(Clone)]
pub struct ReadModels {
    pool: PgPool,
    cache: Option<Cache>,
}

impl ReadModels {
    pub fn new(pool: PgPool, cache: Option<Cache>) -> Self {
        Self { pool, cache }
    }

    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }

    /// The PostgreSQL pool the read models are read from (and idempotency keys are kept in).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Cache hits and misses (`seatgrid_cache_requests_total{model, result}`).
    fn count(&self, model: &'static str, hits: usize, misses: usize) {
        if self.cache.is_some() {
            metrics::counter!("seatgrid_cache_requests_total", "model" => model, "result" => "hit")
                .increment(hits as u64);
            metrics::counter!("seatgrid_cache_requests_total", "model" => model, "result" => "miss")
                .increment(misses as u64);
        }
    }

    /// Seat maps of the given events (absent ones are left out).
    pub async fn seat_maps(&self, event_ids: &[Uuid]) -> Result<HashMap<Uuid, SeatMap>, ReadError> {
        let mut found = HashMap::with_capacity(event_ids.len());
        if let Some(cache) = &self.cache {
            match cache.seat_maps(event_ids).await {
                Ok(maps) => found.extend(maps.into_iter().flatten().map(|m| (m.event_id, m))),
                Err(e) => {
                    tracing::warn!(error = %e, "seat map cache unavailable; reading Postgres")
                }
            }
        }
        let missing: Vec<Uuid> = event_ids
            .iter()
            .filter(|id| !found.contains_key(*id))
            .copied()
            .collect();
        self.count("seat_map", found.len(), missing.len());
        if missing.is_empty() {
            return Ok(found);
        }
        let rows: Vec<(Uuid, String, i64)> = sqlx::query_as(
            "SELECT event_id, seats, version FROM rm_seat_map_view WHERE event_id = ANY($1)",
        )
        .bind(&missing)
        .fetch_all(&self.pool)
        .await?;
        let loaded: Vec<SeatMap> = rows
            .into_iter()
            .map(|(event_id, seats, version)| SeatMap {
                event_id,
                seats: seats.into_bytes(),
                version,
            })
            .collect();
        if let Some(cache) = &self.cache {
            if let Err(e) = cache.fill_seat_maps(&loaded).await {
                tracing::debug!(error = %e, "could not refill the seat map cache");
            }
        }
        found.extend(loaded.into_iter().map(|m| (m.event_id, m)));
        Ok(found)
    }

    pub async fn seat_map(&self, event_id: Uuid) -> Result<Option<SeatMap>, ReadError> {
        Ok(self.seat_maps(&[event_id]).await?.remove(&event_id))
    }

    /// Holds by id (absent ones are left out).
    pub async fn holds(&self, hold_ids: &[Uuid]) -> Result<HashMap<Uuid, HoldRecord>, ReadError> {
        let mut found = HashMap::with_capacity(hold_ids.len());
        if let Some(cache) = &self.cache {
            match cache.holds(hold_ids).await {
                Ok(holds) => found.extend(holds.into_iter().flatten().map(|h| (h.hold_id, h))),
                Err(e) => tracing::warn!(error = %e, "hold cache unavailable; reading Postgres"),
            }
        }
        let missing: Vec<Uuid> = hold_ids
            .iter()
            .filter(|id| !found.contains_key(*id))
            .copied()
            .collect();
        self.count("hold", found.len(), missing.len());
        if missing.is_empty() {
            return Ok(found);
        }
        let loaded: Vec<HoldRecord> =
            sqlx::query_as(&by_keys(HOLD_COLUMNS, "rm_holds", "hold_id", false))
                .bind(&missing)
                .fetch_all(&self.pool)
                .await?;
        if let Some(cache) = &self.cache {
            if let Err(e) = cache.fill_holds(&loaded).await {
                tracing::debug!(error = %e, "could not refill the hold cache");
            }
        }
        found.extend(loaded.into_iter().map(|h| (h.hold_id, h)));
        Ok(found)
    }

    pub async fn hold(&self, hold_id: Uuid) -> Result<Option<HoldRecord>, ReadError> {
        Ok(self.holds(&[hold_id]).await?.remove(&hold_id))
    }

    /// The events an organizer created (at most 10,000, oldest first).
    pub async fn organizer_events(&self, organizer: &str) -> Result<Vec<Uuid>, ReadError> {
        Ok(sqlx::query_scalar(
            "SELECT event_id FROM rm_events WHERE definition->>'organizer' = $1
              ORDER BY list_order LIMIT 10000",
        )
        .bind(organizer)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A customer's holds (bookings included), newest first, optionally for one event.
    pub async fn customer_holds(
        &self,
        customer_id: &str,
        event_id: Option<Uuid>,
    ) -> Result<Vec<HoldRecord>, ReadError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {HOLD_COLUMNS} FROM rm_holds
              WHERE customer_id = $1 AND ($2::uuid IS NULL OR event_id = $2)
              ORDER BY created_at DESC, hold_id"
        ))
        .bind(customer_id)
        .bind(event_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A customer's orders, newest first, optionally for one event (at most `limit`).
    pub async fn customer_orders(
        &self,
        customer_id: &str,
        event_id: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<crate::OrderRecord>, ReadError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {} FROM rm_orders
              WHERE customer_id = $1 AND ($2::uuid IS NULL OR event_id = $2)
              ORDER BY placed_at DESC, order_id LIMIT $3",
            crate::orders::ORDER_COLUMNS
        ))
        .bind(customer_id)
        .bind(event_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Up to `first` orders of an event after order id `after`, in order id order, and whether
    /// more follow.
    pub async fn event_orders(
        &self,
        event_id: Uuid,
        after: Option<Uuid>,
        first: i64,
    ) -> Result<(Vec<crate::OrderRecord>, bool), ReadError> {
        let mut page: Vec<crate::OrderRecord> = sqlx::query_as(&format!(
            "SELECT {} FROM rm_orders
              WHERE event_id = $1 AND ($2::uuid IS NULL OR order_id > $2)
              ORDER BY order_id LIMIT $3",
            crate::orders::ORDER_COLUMNS
        ))
        .bind(event_id)
        .bind(after)
        .bind(first + 1)
        .fetch_all(&self.pool)
        .await?;
        let more = page.len() as i64 > first;
        page.truncate(first.max(0) as usize);
        Ok((page, more))
    }

    /// Up to `first` holds of an event after hold id `after`, in hold id order, and whether more
    /// follow. `live_only` keeps the holds that keep their seats now (booked, or held and unexpired).
    pub async fn event_holds(
        &self,
        event_id: Uuid,
        after: Option<Uuid>,
        first: i64,
        live_only: bool,
    ) -> Result<(Vec<HoldRecord>, bool), ReadError> {
        let mut page: Vec<HoldRecord> = sqlx::query_as(&format!(
            "SELECT {HOLD_COLUMNS} FROM rm_holds
              WHERE event_id = $1 AND hold_id > $2
                AND (NOT $3 OR status = 'booked' OR (status = 'held' AND expires_at > now()))
              ORDER BY hold_id LIMIT $4"
        ))
        .bind(event_id)
        .bind(after.unwrap_or(Uuid::nil()))
        .bind(live_only)
        .bind(first + 1)
        .fetch_all(&self.pool)
        .await?;
        let more = page.len() as i64 > first;
        page.truncate(first as usize);
        Ok((page, more))
    }

    /// Ticketed events by id.
    pub async fn events(
        &self,
        event_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, EventRecord>, ReadError> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT definition, seat_count, list_order FROM rm_events WHERE event_id = ANY($1)",
        )
        .bind(event_ids)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| r.record().map(|e| (e.definition.event_id.0, e)))
            .collect()
    }

    /// Up to `first` events created after the one at `after` (a `list_order`), oldest first, and
    /// whether more follow.
    pub async fn events_page(
        &self,
        after: Option<i64>,
        first: i64,
    ) -> Result<(Vec<EventRecord>, bool), ReadError> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT definition, seat_count, list_order FROM rm_events
              WHERE list_order > $1 ORDER BY list_order LIMIT $2",
        )
        .bind(after.unwrap_or(0))
        .bind(first + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut page = rows
            .into_iter()
            .map(EventRow::record)
            .collect::<Result<Vec<_>, _>>()?;
        let more = page.len() as i64 > first;
        page.truncate(first as usize);
        Ok((page, more))
    }

    pub async fn event_count(&self) -> Result<i64, ReadError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM rm_events")
            .fetch_one(&self.pool)
            .await?)
    }
}

/// A row of `rm_events`.
#[derive(sqlx::FromRow)]
struct EventRow {
    definition: sqlx::types::Json<EventDefinition>,
    seat_count: i32,
    list_order: i64,
}

impl EventRow {
    fn record(self) -> Result<EventRecord, ReadError> {
        Ok(EventRecord {
            definition: self.definition.0,
            seat_count: self.seat_count,
            list_order: self.list_order,
        })
    }
}
