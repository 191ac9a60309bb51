//! From a stored domain event to one typed ClickHouse row.
//!
//! Seats are labelled (section, row, price tier, price) with the ticketed event's layout, which is
//! read once per event from the event store and kept: layouts never change once created.

use std::collections::HashMap;
use std::sync::Arc;

use clickhouse::Row;
use domain::{
    CustomerAllowanceEvent, EventDefinition, HoldChange, SeatBlockEvent, SeatId,
    TicketedEventEvent, VenueLayout,
};
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

struct KnownEvent {
    definition: EventDefinition,
    layout: VenueLayout,
}

/// Layouts of ticketed events, loaded from the event store on first use.
pub struct Layouts {
    pool: PgPool,
    known: HashMap<Uuid, Arc<KnownEvent>>,
}

impl Layouts {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            known: HashMap::new(),
        }
    }

    fn remember(&mut self, definition: EventDefinition) -> Option<Arc<KnownEvent>> {
        let layout = VenueLayout::new(definition.layout.clone()).ok()?;
        let id = definition.event_id.0;
        let known = Arc::new(KnownEvent { definition, layout });
        self.known.insert(id, known.clone());
        Some(known)
    }

    async fn get(&mut self, event_id: Uuid) -> Result<Option<Arc<KnownEvent>>, RowError> {
        if let Some(k) = self.known.get(&event_id) {
            return Ok(Some(k.clone()));
        }
        let payload: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT payload FROM events
              WHERE aggregate_type = 'TicketedEvent' AND aggregate_id = $1 AND sequence = 1",
        )
        .bind(event_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(payload) = payload else {
            return Ok(None);
        };
        let TicketedEventEvent::EventCreated(definition) = serde_json::from_value(payload)
            .map_err(|e| RowError::Corrupt(event_id.to_string(), e.to_string()))?;
        Ok(self.remember(definition))
    }

    /// The row for one stored event.
    pub async fn row(&mut self, e: &RecordedEvent, now_ms: i64) -> Result<EventRow, RowError> {
        let corrupt = |err: serde_json::Error| {
            RowError::Corrupt(
                format!("{}#{}", e.aggregate_id, e.sequence),
                err.to_string(),
            )
        };
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
        let change: Option<HoldChange> = match e.aggregate_type.as_str() {
            "TicketedEvent" => {
                let TicketedEventEvent::EventCreated(d) =
                    serde_json::from_value(e.payload.clone()).map_err(corrupt)?;
                row.event_id = d.event_id.0.to_string();
                row.occurred_at = d.created_at.timestamp().max(0) as u32;
                row.occurred_at_ms = d.created_at.timestamp_millis();
                self.remember(d);
                None
            }
            "SeatBlock" => Some(
                match serde_json::from_value(e.payload.clone()).map_err(corrupt)? {
                    SeatBlockEvent::SeatHeld(c)
                    | SeatBlockEvent::SeatBooked(c)
                    | SeatBlockEvent::SeatReleased(c)
                    | SeatBlockEvent::HoldExpired(c) => c,
                },
            ),
            "CustomerAllowance" => Some(
                match serde_json::from_value(e.payload.clone()).map_err(corrupt)? {
                    CustomerAllowanceEvent::AllowanceReserved(c)
                    | CustomerAllowanceEvent::AllowanceCommitted(c) => c,
                    CustomerAllowanceEvent::AllowanceReturned { change, reason } => {
                        row.reason = serde_json::to_value(reason)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default();
                        change
                    }
                },
            ),
            _ => None,
        };
        if let Some(c) = change {
            row.event_id = c.event_id.0.to_string();
            row.hold_id = c.hold_id.0.to_string();
            row.customer_id = c.customer_id.to_string();
            row.seats = c.seats.iter().map(|s| s.0).collect();
            row.seat_count = c.seats.len() as u32;
            row.occurred_at = c.at.timestamp().max(0) as u32;
            row.occurred_at_ms = c.at.timestamp_millis();
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
