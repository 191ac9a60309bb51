//! From a stored domain event to one typed ClickHouse row.
//!
//! Seats are labelled (section, row, price tier, price) with the ticketed event's layout, kept in
//! the process's [`EventCatalog`] (read from the event store on first use): layouts never change
//! once created. Events are decoded by the domain's one decoder ([`StoredEvent`]). Every order
//! event's row carries its order's event, customer, seats and amount (read from the order's
//! placement), so order reports need no joins.

use std::sync::Arc;

use clickhouse::Row;
use domain::stored::aggregate_type::TICKETED_EVENT;
use std::collections::HashMap;

use domain::stored::aggregate_type::ORDER;
use domain::{EventCatalog, KnownEvent, OrderEvent, OrderPlaced, SeatId, StoredEvent};
use projections::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

/// One row of `domain_events`.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct EventRow {
    pub transaction_id: u64,
    pub position: i64,
    pub aggregate_type: String,
    pub stream_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_id: String,
    pub hold_id: String,
    pub customer_id: String,
    pub seats: Vec<u32>,
    pub seat_count: u32,
    pub seat_sections: Vec<String>,
    pub seat_rows: Vec<String>,
    pub seat_tiers: Vec<String>,
    pub seat_prices: Vec<u64>,
    pub amount_cents: u64,
    pub capacity: u32,
    pub currency: String,
    pub reason: String,
    /// Seconds since the epoch (a `DateTime('UTC')` column).
    pub occurred_at: u32,
    pub occurred_at_ms: i64,
    pub recorded_at_ms: i64,
    pub ingested_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("event store unavailable: {0}")]
    Database(#[from] sqlx::Error),
    #[error("unreadable event {0}: {1}")]
    Corrupt(String, String),
}

/// Layouts of ticketed events, loaded from the event store on first use, and the placements of
/// recent orders (each order event's row names its order's event, customer, seats and amount).
pub struct Layouts {
    pool: PgPool,
    catalog: Arc<EventCatalog>,
    placements: HashMap<String, Arc<OrderPlaced>>,
}

/// Placements kept at most; past it the cache starts again (each miss is one indexed read).
const PLACEMENTS_KEPT: usize = 10_000;

impl EventRow {
    /// Whose seats, of which ticketed event, and when: the fields every row about seats fills.
    fn about_seats(
        &mut self,
        event_id: domain::EventId,
        customer_id: &domain::CustomerId,
        seats: &[SeatId],
        at: chrono::DateTime<chrono::Utc>,
    ) {
        self.event_id = event_id.0.to_string();
        self.customer_id = customer_id.to_string();
        self.seats = seats.iter().map(|s| s.0).collect();
        self.seat_count = seats.len() as u32;
        self.occurred_at = at.timestamp().max(0) as u32;
        self.occurred_at_ms = at.timestamp_millis();
    }
}

impl Layouts {
    pub fn new(pool: PgPool, catalog: Arc<EventCatalog>) -> Self {
        Self {
            pool,
            catalog,
            placements: HashMap::new(),
        }
    }

    /// The placement of order `order_id` (its first event), if it has one.
    async fn placement(&mut self, order_id: &str) -> Result<Option<Arc<OrderPlaced>>, RowError> {
        if let Some(p) = self.placements.get(order_id) {
            return Ok(Some(p.clone()));
        }
        let decoded = self.first_event(ORDER, order_id).await?;
        let Some(placed) = decoded.as_ref().and_then(StoredEvent::order_placed) else {
            return Ok(None);
        };
        if self.placements.len() >= PLACEMENTS_KEPT {
            self.placements.clear();
        }
        let placed = Arc::new(placed.clone());
        self.placements.insert(order_id.to_owned(), placed.clone());
        Ok(Some(placed))
    }

    async fn get(&mut self, event_id: Uuid) -> Result<Option<Arc<KnownEvent>>, RowError> {
        if let Some(k) = self.catalog.get(domain::EventId(event_id)) {
            return Ok(Some(k));
        }
        let decoded = self
            .first_event(TICKETED_EVENT, &event_id.to_string())
            .await?;
        Ok(decoded
            .as_ref()
            .and_then(StoredEvent::created_event)
            .and_then(|d| self.catalog.insert(d.clone())))
    }

    /// The first stored event of an aggregate (a ticketed event's creation, an order's
    /// placement), decoded; `None` when there is none or this release does not know it.
    async fn first_event(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<StoredEvent>, RowError> {
        let payload: Option<sqlx::types::Json<Box<serde_json::value::RawValue>>> =
            sqlx::query_scalar(
                "SELECT payload FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = 1",
            )
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(payload) = payload else {
            return Ok(None);
        };
        StoredEvent::decode(aggregate_type, payload.get())
            .map_err(|e| RowError::Corrupt(aggregate_id.to_owned(), e.to_string()))
    }

    /// The row for one stored event.
    pub async fn row(&mut self, e: &RecordedEvent, now_ms: i64) -> Result<EventRow, RowError> {
        let mut row = EventRow {
            transaction_id: e.global.transaction_id,
            position: e.global.position,
            aggregate_type: e.aggregate_type.clone(),
            stream_id: e.aggregate_id.clone(),
            sequence: e.sequence,
            event_type: e.event_type.clone(),
            event_id: String::new(),
            hold_id: String::new(),
            customer_id: String::new(),
            seats: Vec::new(),
            seat_count: 0,
            seat_sections: Vec::new(),
            seat_rows: Vec::new(),
            seat_tiers: Vec::new(),
            seat_prices: Vec::new(),
            amount_cents: 0,
            capacity: 0,
            currency: String::new(),
            reason: String::new(),
            occurred_at: e.recorded_at.timestamp().max(0) as u32,
            occurred_at_ms: e.recorded_at.timestamp_millis(),
            recorded_at_ms: e.recorded_at.timestamp_millis(),
            ingested_at_ms: now_ms,
        };
        let decoded = StoredEvent::decode(&e.aggregate_type, e.payload.get()).map_err(|err| {
            RowError::Corrupt(
                format!("{}#{}", e.aggregate_id, e.sequence),
                err.to_string(),
            )
        })?;
        if let Some(d) = decoded.as_ref().and_then(StoredEvent::created_event) {
            row.event_id = d.event_id.0.to_string();
            row.occurred_at = d.created_at.timestamp().max(0) as u32;
            row.occurred_at_ms = d.created_at.timestamp_millis();
            self.catalog.insert(d.clone());
        }
        if let Some(StoredEvent::Order(order)) = &decoded {
            // Every order row is about its placement's seats; it happened at its own time.
            let placed = match order {
                OrderEvent::OrderPlaced(p) => Some(Arc::new(p.clone())),
                _ => self.placement(&e.aggregate_id).await?,
            };
            if let Some(p) = placed {
                row.about_seats(p.event_id, &p.customer_id, &p.seats, order.at());
            }
            match order {
                OrderEvent::PaymentFailed { reason, .. } => row.reason = reason.clone(),
                OrderEvent::RefundRequested { reason, .. } => {
                    row.reason = reason.as_str().to_owned()
                }
                _ => {}
            }
        }
        if let Some(reason) = decoded.as_ref().and_then(StoredEvent::return_reason) {
            row.reason = reason.as_str().to_owned();
        }
        let change = decoded.as_ref().and_then(StoredEvent::hold_change);
        if let Some(c) = change {
            row.hold_id = c.hold_id.0.to_string();
            row.about_seats(c.event_id, &c.customer_id, &c.seats, c.at);
        }
        if let Ok(id) = row.event_id.parse::<Uuid>() {
            if let Some(known) = self.get(id).await? {
                row.capacity = known.layout.seat_count();
                row.currency = known.definition.currency.clone();
                for seat in &row.seats {
                    if let Some(l) = known.layout.label(SeatId(*seat)) {
                        row.seat_sections.push(l.section);
                        row.seat_rows.push(l.row);
                        row.seat_tiers.push(l.price_tier);
                        row.seat_prices.push(l.price_cents);
                    }
                }
                row.amount_cents = row.seat_prices.iter().sum();
            }
        }
        Ok(row)
    }
}
