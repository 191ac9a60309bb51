//! Request validation shared by every adapter: a new ticketed event's shape, seat references and
//! who the customer is. Failures are the core's own [`CommandError`]s, so REST and GraphQL refuse the
//! same input with the same code.
//!
//! Policy: the shapes here are the public request shapes (REST bodies; GraphQL inputs convert into
//! them field by field). Unknown fields are refused. Everything a value must satisfy beyond its
//! shape (name length, layout sizes, hold length, limits) is the domain's
//! [`domain::EventDefinition::validate`].

use chrono::{DateTime, Utc};
use domain::SeatChoice;
use domain::{
    BestSeats, FocalPoint, LayoutSpec, NewEvent, PriceTier, RowSpec, SeatRef, SectionSpec,
};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::CommandError;

/// A new ticketed event. Give the layout either as a grid (`rows` x `cols`, one price) or as
/// `sections` with `price_tiers`; the grid may also be given at the top level, as in the seed.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEventRequest {
    #[schema(example = "Flash Sale Live", min_length = 1, max_length = 200)]
    pub name: String,
    pub venue: Option<String>,
    #[serde(alias = "date")]
    pub starts_at: Option<DateTime<Utc>>,
    /// ISO 4217 code; default EUR.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    #[schema(minimum = 1, maximum = 1000)]
    pub rows: Option<u32>,
    #[schema(minimum = 1, maximum = 1000)]
    pub cols: Option<u32>,
    #[schema(maximum = 1_000_000_000)]
    pub price_cents: Option<u64>,
    pub layout: Option<LayoutRequest>,
    /// Hold length for this event (default 600 s, between the server's bounds, 10 to 3600 s by
    /// default).
    #[schema(minimum = 1)]
    pub hold_seconds: Option<u32>,
    /// Seats one customer may hold plus book for this event (default 10, capped by the server).
    #[schema(minimum = 1)]
    pub max_seats_per_customer: Option<u32>,
    /// Where the best seats are, for buyers who ask for the best available; default the centre
    /// of the first section's front row.
    pub focal_point: Option<FocalPointRequest>,
}

/// The point best-available seats are closest to: sections are ranked from it (the focal section
/// first, then the others in layout order), and within a section seats are scored by distance,
/// one row back counting as two seats sideways.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FocalPointRequest {
    /// The best section (default the first).
    pub section: Option<String>,
    /// Rows from the front of the section; 0 (the default) is the first row listed.
    #[schema(minimum = 0)]
    pub row_index: Option<u32>,
    /// Position along the row: 0 = its first seat, 100 = its last, 50 (the default) the centre.
    #[schema(minimum = 0, maximum = 100)]
    pub across_percent: Option<u32>,
}

impl FocalPointRequest {
    pub fn into_domain(self) -> FocalPoint {
        let default = FocalPoint::default();
        FocalPoint {
            section: self.section,
            row_index: self.row_index.unwrap_or(default.row_index),
            across_percent: self.across_percent.unwrap_or(default.across_percent),
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LayoutRequest {
    #[schema(minimum = 1, maximum = 1000)]
    pub rows: Option<u32>,
    #[schema(minimum = 1, maximum = 1000)]
    pub cols: Option<u32>,
    #[schema(maximum = 1_000_000_000)]
    pub price_cents: Option<u64>,
    pub price_tiers: Option<Vec<PriceTierRequest>>,
    pub sections: Option<Vec<SectionRequest>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceTierRequest {
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    #[schema(maximum = 1_000_000_000)]
    pub price_cents: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionRequest {
    pub name: String,
    pub price_tier: String,
    pub rows: Vec<RowRequest>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RowRequest {
    #[schema(min_length = 1, max_length = 64)]
    pub label: String,
    #[schema(minimum = 1, maximum = 1000)]
    pub seats: u32,
}

impl CreateEventRequest {
    /// The domain's draft of the event; the layout's own rules are checked when it is created.
    pub fn into_new_event(self) -> Result<NewEvent, CommandError> {
        let invalid = |msg: &str| CommandError::Invalid(vec![msg.to_owned()]);
        let layout =
            match self.layout {
                Some(LayoutRequest {
                    sections: Some(sections),
                    price_tiers,
                    rows: None,
                    cols: None,
                    price_cents: None,
                }) => LayoutSpec {
                    price_tiers: price_tiers
                        .ok_or_else(|| invalid("a layout with sections needs price_tiers"))?
                        .into_iter()
                        .map(|t| PriceTier {
                            name: t.name,
                            price_cents: t.price_cents,
                        })
                        .collect(),
                    sections: sections
                        .into_iter()
                        .map(SectionRequest::into_spec)
                        .collect(),
                    focal_point: None,
                },
                Some(LayoutRequest {
                    rows: Some(rows),
                    cols: Some(cols),
                    price_cents,
                    sections: None,
                    price_tiers: None,
                }) if self.rows.is_none() && self.cols.is_none() => {
                    LayoutSpec::grid(rows, cols, price_cents.or(self.price_cents).unwrap_or(0))
                        .map_err(CommandError::from)?
                }
                Some(_) => return Err(invalid(
                    "layout must be either {rows, cols, price_cents} or {price_tiers, sections}",
                )),
                None => match (self.rows, self.cols) {
                    (Some(rows), Some(cols)) => {
                        LayoutSpec::grid(rows, cols, self.price_cents.unwrap_or(0))
                            .map_err(CommandError::from)?
                    }
                    _ => return Err(invalid(
                        "give a layout: rows and cols, or layout.sections with layout.price_tiers",
                    )),
                },
            };
        let layout = LayoutSpec {
            focal_point: self.focal_point.map(FocalPointRequest::into_domain),
            ..layout
        };
        Ok(NewEvent {
            organizer: None,
            name: self.name,
            venue: self.venue,
            starts_at: self.starts_at,
            currency: self.currency,
            layout,
            hold_seconds: self.hold_seconds,
            max_seats_per_customer: self.max_seats_per_customer,
        })
    }
}

impl SectionRequest {
    fn into_spec(self) -> SectionSpec {
        SectionSpec {
            name: self.name,
            price_tier: self.price_tier,
            rows: self
                .rows
                .into_iter()
                .map(|r| RowSpec {
                    label: r.label,
                    seats: r.seats,
                })
                .collect(),
        }
    }
}

/// One seat as an adapter received it, before it is known to be a seat id or a label.
#[derive(Debug, Clone, PartialEq)]
pub enum SeatInput {
    /// JSON as sent: a seat id (number) or `{section, row, seat}`.
    Json(Value),
    /// Typed fields; exactly one of `seat_id` or (`row` and `seat`, maybe `section`) is given.
    Fields {
        seat_id: Option<u32>,
        section: Option<String>,
        row: Option<String>,
        seat: Option<String>,
    },
}

impl SeatInput {
    fn into_ref(self) -> Option<SeatRef> {
        match self {
            Self::Json(value) => serde_json::from_value(value).ok(),
            Self::Fields {
                seat_id: Some(id),
                section: None,
                row: None,
                seat: None,
            } => Some(SeatRef::Id(id)),
            Self::Fields {
                seat_id: None,
                section,
                row: Some(row),
                seat: Some(seat),
            } => Some(SeatRef::Label {
                section,
                row: domain::layout::LabelValue::Text(row),
                seat: domain::layout::LabelValue::Text(seat),
            }),
            Self::Fields { .. } => None,
        }
    }
}

/// The best-available fields of a hold request, as adapters receive them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BestSeatsInput {
    pub quantity: Option<u32>,
    pub together: Option<bool>,
    pub section: Option<String>,
    pub price_tier: Option<String>,
}

/// What a hold request asks for: named `seats`, or a `quantity` of the best available (with
/// `together`, `section`, `price_tier`), never both. Limits are checked against the event later.
pub fn seat_choice(
    seats: Option<Vec<SeatInput>>,
    best: BestSeatsInput,
) -> Result<SeatChoice, CommandError> {
    let invalid = |msg: &str| Err(CommandError::Invalid(vec![msg.to_owned()]));
    let BestSeatsInput {
        quantity,
        together,
        section,
        price_tier,
    } = best;
    let best_fields = together.is_some() || section.is_some() || price_tier.is_some();
    match (seats, quantity) {
        (Some(seats), None) if !best_fields => Ok(SeatChoice::Named(seat_refs(seats)?)),
        (Some(_), _) => invalid(
            "give either seats (named) or quantity (best available, with together, section, price_tier), not both",
        ),
        (None, Some(quantity)) => Ok(SeatChoice::Best(BestSeats {
            quantity,
            together: together.unwrap_or(false),
            section,
            price_tier,
        })),
        (None, None) if best_fields => invalid("quantity is required for the best available seats"),
        (None, None) => invalid("give seats to hold, or a quantity of best available seats"),
    }
}

/// Seat references, every malformed one named by its position.
pub fn seat_refs(seats: Vec<SeatInput>) -> Result<Vec<SeatRef>, CommandError> {
    let mut refs = Vec::with_capacity(seats.len());
    let mut problems = Vec::new();
    for (i, seat) in seats.into_iter().enumerate() {
        match seat.into_ref() {
            Some(r) => refs.push(r),
            None => problems.push(format!(
                "seats[{i}] must be a seat id (a number from 0) or an object {{section, row, seat}}"
            )),
        }
    }
    if problems.is_empty() {
        Ok(refs)
    } else {
        Err(CommandError::InvalidSeats(problems))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_top_level_grid_is_a_layout() {
        let request = CreateEventRequest {
            name: "x".into(),
            rows: Some(2),
            cols: Some(3),
            price_cents: Some(500),
            ..Default::default()
        };
        let draft = request.into_new_event().unwrap();
        assert_eq!(draft.layout, LayoutSpec::grid(2, 3, 500).unwrap());
    }

    #[test]
    fn a_grid_given_twice_or_no_layout_is_refused() {
        let twice = CreateEventRequest {
            name: "x".into(),
            rows: Some(2),
            cols: Some(3),
            layout: Some(LayoutRequest {
                rows: Some(1),
                cols: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            twice.into_new_event().unwrap_err().code(),
            "invalid_request"
        );
        let none = CreateEventRequest {
            name: "x".into(),
            ..Default::default()
        };
        assert!(none
            .into_new_event()
            .unwrap_err()
            .to_string()
            .contains("give a layout"));
    }

    #[test]
    fn sections_need_price_tiers() {
        let request = CreateEventRequest {
            name: "x".into(),
            layout: Some(LayoutRequest {
                sections: Some(vec![]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(request
            .into_new_event()
            .unwrap_err()
            .to_string()
            .contains("needs price_tiers"));
    }

    #[test]
    fn a_hold_asks_for_named_seats_or_a_quantity_of_best_ones_never_both() {
        let named = seat_choice(Some(vec![SeatInput::Json(json!(3))]), Default::default());
        assert_eq!(named.unwrap(), SeatChoice::Named(vec![SeatRef::Id(3)]));
        let best = BestSeatsInput {
            quantity: Some(2),
            together: Some(true),
            section: Some("Balcony".into()),
            price_tier: None,
        };
        let SeatChoice::Best(ask) = seat_choice(None, best.clone()).unwrap() else {
            panic!("not best available")
        };
        assert_eq!((ask.quantity, ask.together), (2, true));
        let both = seat_choice(Some(vec![]), best.clone()).unwrap_err();
        assert!(both.to_string().contains("not both"));
        let no_quantity = BestSeatsInput {
            quantity: None,
            ..best
        };
        let missing = seat_choice(None, no_quantity).unwrap_err();
        assert!(missing.to_string().contains("quantity is required"));
        assert_eq!(
            seat_choice(None, Default::default()).unwrap_err().code(),
            "invalid_request"
        );
    }

    #[test]
    fn seats_by_id_or_label_and_bad_ones_by_position() {
        let refs = seat_refs(vec![
            SeatInput::Json(json!(12)),
            SeatInput::Json(json!({"row": "3", "seat": 4})),
            SeatInput::Fields {
                seat_id: None,
                section: Some("Balcony".into()),
                row: Some("1".into()),
                seat: Some("2".into()),
            },
        ])
        .unwrap();
        assert_eq!(refs[0], SeatRef::Id(12));
        assert_eq!(refs.len(), 3);
        let bad = seat_refs(vec![
            SeatInput::Json(json!(1)),
            SeatInput::Json(json!("x")),
            SeatInput::Fields {
                seat_id: Some(1),
                section: None,
                row: Some("1".into()),
                seat: None,
            },
        ])
        .unwrap_err();
        let CommandError::InvalidSeats(problems) = bad else {
            panic!("not a seat problem")
        };
        assert!(problems[0].starts_with("seats[1]"));
        assert!(problems[1].starts_with("seats[2]"));
    }
}
