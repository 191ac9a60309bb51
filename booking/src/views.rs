//! What the core answers with: plain serializable views, shared by REST and GraphQL. Field names
//! are the public API's.

use chrono::{DateTime, Utc};
use domain::{CustomerId, HoldId, HoldStatus, KnownEvent, SeatId, SeatLabel, SeatStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    pub id: Uuid,
    pub name: String,
    pub venue: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    /// ISO 4217 currency of every price.
    pub currency: String,
    /// How long a hold lasts before its seats are free again.
    pub hold_seconds: u32,
    /// How many seats one customer may hold and book in total for this event.
    pub max_seats_per_customer: u32,
    pub seat_count: u32,
    pub price_tiers: Vec<PriceTierView>,
    pub sections: Vec<SectionView>,
    /// Where the best available seats are (as the organizer set it, or the default).
    pub focal_point: FocalPointView,
    pub created_at: DateTime<Utc>,
}

/// The point best-available seats are closest to: a section, a row index from its front (0 = the
/// first row listed) and a position across the row (0-100 %, 50 = the centre).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FocalPointView {
    pub section: String,
    pub row_index: u32,
    pub across_percent: u32,
}

impl FocalPointView {
    /// The event's focal point, the default one included, with its section named.
    pub fn of(event: &KnownEvent) -> Self {
        let spec = event.layout.spec();
        let focal = spec.focal_point.clone().unwrap_or_default();
        Self {
            section: focal
                .section
                .unwrap_or_else(|| spec.sections[0].name.clone()),
            row_index: focal.row_index,
            across_percent: focal.across_percent,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PriceTierView {
    pub name: String,
    pub price_cents: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SectionView {
    pub name: String,
    pub price_tier: String,
    pub rows: Vec<RowView>,
}

/// A row: seats `1..=seats`, whose seat ids are `first_seat_id..first_seat_id + seats`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RowView {
    pub label: String,
    pub seats: u32,
    pub first_seat_id: u32,
}

impl EventView {
    pub fn of(event: &KnownEvent) -> Self {
        let (definition, layout) = (&event.definition, &event.layout);
        let mut first_seats = layout.row_first_seats();
        let spec = layout.spec();
        Self {
            id: definition.event_id.0,
            name: definition.name.clone(),
            venue: definition.venue.clone(),
            starts_at: definition.starts_at,
            currency: definition.currency.clone(),
            hold_seconds: definition.hold_seconds,
            max_seats_per_customer: definition.max_seats_per_customer,
            seat_count: layout.seat_count(),
            price_tiers: spec
                .price_tiers
                .iter()
                .map(|t| PriceTierView {
                    name: t.name.clone(),
                    price_cents: t.price_cents,
                })
                .collect(),
            sections: spec
                .sections
                .iter()
                .map(|s| SectionView {
                    name: s.name.clone(),
                    price_tier: s.price_tier.clone(),
                    rows: s
                        .rows
                        .iter()
                        .map(|r| RowView {
                            label: r.label.clone(),
                            seats: r.seats,
                            first_seat_id: first_seats.next().unwrap_or_default(),
                        })
                        .collect(),
                })
                .collect(),
            focal_point: FocalPointView::of(event),
            created_at: definition.created_at,
        }
    }
}

/// One seat, by id and by labels, with its price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SeatView {
    pub seat_id: u32,
    pub section: String,
    pub row: String,
    pub seat: u32,
    pub price_tier: String,
    pub price_cents: u64,
}

impl From<SeatLabel> for SeatView {
    fn from(l: SeatLabel) -> Self {
        Self {
            seat_id: l.seat_id.0,
            section: l.section,
            row: l.row,
            seat: l.seat,
            price_tier: l.price_tier,
            price_cents: l.price_cents,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HoldView {
    pub hold_id: Uuid,
    pub event_id: Uuid,
    pub customer_id: String,
    pub status: HoldStatus,
    pub expires_at: DateTime<Utc>,
    pub seats: Vec<SeatView>,
    pub total_cents: u64,
    pub currency: String,
}

/// The views of the given seats of `event` (unknown seat ids are left out).
pub fn seat_views(event: &KnownEvent, seats: &[SeatId]) -> Vec<SeatView> {
    event
        .labels(seats)
        .into_iter()
        .map(SeatView::from)
        .collect()
}

/// A hold's view: its seats labelled and priced from the event's layout.
pub fn hold_view(
    event: &KnownEvent,
    hold_id: HoldId,
    customer_id: &CustomerId,
    seats: &[SeatId],
    expires_at: DateTime<Utc>,
    status: HoldStatus,
) -> HoldView {
    let seats = seat_views(event, seats);
    HoldView {
        hold_id: hold_id.0,
        event_id: event.definition.event_id.0,
        customer_id: customer_id.to_string(),
        status,
        expires_at,
        // Bounded by the layout's maximum price and seat count, so the checked sum is always `Some`.
        total_cents: domain::VenueLayout::total_cents(seats.iter().map(|s| s.price_cents))
            .unwrap_or(u64::MAX),
        seats,
        currency: event.definition.currency.clone(),
    }
}

impl SeatMapView {
    /// The view of a compact seat map, with its counts.
    pub fn new(event_id: Uuid, seats: String, consistency: &str) -> Self {
        let count = |c: u8| seats.bytes().filter(|b| *b == c).count() as u32;
        let (held, booked) = (
            count(SeatStatus::Held.code()),
            count(SeatStatus::Booked.code()),
        );
        let seat_count = seats.len() as u32;
        Self {
            event_id,
            seat_count,
            available: seat_count - held - booked,
            held,
            booked,
            encoding: "A=available,H=held,B=booked".into(),
            seats,
            as_of: Utc::now(),
            consistency: consistency.into(),
        }
    }
}

/// The seat map in a compact form: `seats` has one character per seat id, in id order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SeatMapView {
    pub event_id: Uuid,
    pub seat_count: u32,
    pub available: u32,
    pub held: u32,
    pub booked: u32,
    /// Always `"A=available,H=held,B=booked"`: how to read `seats`.
    pub encoding: String,
    #[schema(example = "AAHHBAAAAA")]
    pub seats: String,
    pub as_of: DateTime<Utc>,
    /// `strong`: computed from the event store; `eventual`: the projected read model.
    #[schema(example = "eventual")]
    pub consistency: String,
}

/// An order as its customer sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrderView {
    pub order_id: Uuid,
    pub event_id: Uuid,
    pub customer_id: String,
    /// As of now: an order still unpaid at `payment_due` reads `expired`.
    pub status: domain::OrderStatus,
    /// The order's holds (a hold placed again for a late payer replaces the one that lapsed).
    pub holds: Vec<Uuid>,
    pub seats: Vec<SeatView>,
    pub amount_cents: u64,
    pub currency: String,
    pub payment_due: DateTime<Utc>,
    /// The provider's idempotency key for this order's payment (the order id).
    pub payment_key: String,
    /// The provider's payment id, once the provider took the request (moments after the order
    /// is placed: the request leaves through the event log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_intent: Option<String>,
    /// Where the buyer pays (the provider's page), once the provider took the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_reason: Option<domain::RefundReason>,
}
