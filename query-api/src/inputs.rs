//! GraphQL input types, converted into the application core's request shapes so that GraphQL and
//! REST are validated alike.

use async_graphql::InputObject;
use booking::validation::{
    self, CreateEventRequest, FocalPointRequest, LayoutRequest, PriceTierRequest, RowRequest,
    SectionRequest,
};
use chrono::Utc;

#[derive(InputObject)]
pub struct CreateEventInput {
    pub name: String,
    pub venue: Option<String>,
    pub starts_at: Option<chrono::DateTime<Utc>>,
    /// ISO 4217; default EUR.
    pub currency: Option<String>,
    pub layout: LayoutInput,
    pub hold_seconds: Option<u32>,
    pub max_seats_per_customer: Option<u32>,
    /// Where the best seats are, for `holdSeats(quantity: ...)`; default the centre of the first
    /// section's front row.
    pub focal_point: Option<FocalPointInput>,
}

/// The point best-available seats are closest to (see `FocalPointRequest` in the REST document).
#[derive(InputObject)]
pub struct FocalPointInput {
    /// The best section (default the first).
    pub section: Option<String>,
    /// Rows from the front of the section (0, the default, is the first row listed).
    pub row_index: Option<u32>,
    /// Position along the row: 0 = its first seat, 100 = its last, 50 (default) the centre.
    pub across_percent: Option<u32>,
}

/// Either a grid (`rows`, `cols`, `priceCents`) or `priceTiers` with `sections`.
#[derive(InputObject)]
pub struct LayoutInput {
    pub rows: Option<u32>,
    pub cols: Option<u32>,
    pub price_cents: Option<u64>,
    pub price_tiers: Option<Vec<PriceTierInput>>,
    pub sections: Option<Vec<SectionInput>>,
}

#[derive(InputObject)]
pub struct PriceTierInput {
    pub name: String,
    pub price_cents: u64,
}

#[derive(InputObject)]
pub struct SectionInput {
    pub name: String,
    pub price_tier: String,
    pub rows: Vec<RowInput>,
}

#[derive(InputObject)]
pub struct RowInput {
    pub label: String,
    pub seats: u32,
}

/// A seat, by `seatId` or by `row` and `seat` labels (plus `section` when there are several).
#[derive(InputObject)]
pub struct SeatInput {
    pub seat_id: Option<u32>,
    pub section: Option<String>,
    pub row: Option<String>,
    pub seat: Option<String>,
}

impl SeatInput {
    pub(crate) fn into_core(self) -> validation::SeatInput {
        validation::SeatInput::Fields {
            seat_id: self.seat_id,
            section: self.section,
            row: self.row,
            seat: self.seat,
        }
    }
}

impl CreateEventInput {
    /// The same request REST takes, so both are validated alike.
    pub(crate) fn into_request(self) -> CreateEventRequest {
        let layout = self.layout;
        CreateEventRequest {
            name: self.name,
            venue: self.venue,
            starts_at: self.starts_at,
            currency: self.currency,
            rows: None,
            cols: None,
            price_cents: None,
            layout: Some(LayoutRequest {
                rows: layout.rows,
                cols: layout.cols,
                price_cents: layout.price_cents,
                price_tiers: layout.price_tiers.map(|tiers| {
                    tiers
                        .into_iter()
                        .map(|t| PriceTierRequest {
                            name: t.name,
                            price_cents: t.price_cents,
                        })
                        .collect()
                }),
                sections: layout.sections.map(|sections| {
                    sections
                        .into_iter()
                        .map(|s| SectionRequest {
                            name: s.name,
                            price_tier: s.price_tier,
                            rows: s
                                .rows
                                .into_iter()
                                .map(|r| RowRequest {
                                    label: r.label,
                                    seats: r.seats,
                                })
                                .collect(),
                        })
                        .collect()
                }),
            }),
            hold_seconds: self.hold_seconds,
            max_seats_per_customer: self.max_seats_per_customer,
            focal_point: self.focal_point.map(|f| FocalPointRequest {
                section: f.section,
                row_index: f.row_index,
                across_percent: f.across_percent,
            }),
        }
    }
}
