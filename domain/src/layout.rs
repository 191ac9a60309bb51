//! Venue layouts: sections with a price tier each, rows of N seats, and the seat blocks they are cut
//! into.
//!
//! Policy:
//! - A layout is immutable once its ticketed event is created, so seat ids (positions in layout
//!   order: sections, then rows, then seats, from 0) are stable forever.
//! - Seats are numbered `1..=N` within their row; rows and sections are named by their labels.
//! - Each row is one seat block, cut into pieces of at most [`MAX_SEATS_PER_BLOCK`] seats, so a
//!   block is small enough to load and decide on in microseconds, and a typical hold (adjacent
//!   seats in one row) touches exactly one block.
//! - Size limits keep one event's definition and seat map small: see the `MAX_*` constants.
//! - The layout also says where the best seats are ([`FocalPoint`]) and keeps its rows in
//!   best-first order for [`crate::best_seats`], computed once when it is validated.

use std::collections::HashSet;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::focal::BestOrder;
pub use crate::focal::FocalPoint;
use crate::ids::SeatId;

pub const MAX_SEATS_PER_BLOCK: u32 = 200;
pub const MAX_SEATS_PER_EVENT: u32 = 100_000;
pub const MAX_SEATS_PER_ROW: u32 = 1_000;
pub const MAX_ROWS_PER_SECTION: usize = 1_000;
pub const MAX_SECTIONS: usize = 200;
pub const MAX_PRICE_TIERS: usize = 50;
pub const MAX_LABEL_LEN: usize = 64;
/// The highest price of one seat, in minor units (10,000,000.00). With at most
/// [`MAX_SEATS_PER_EVENT`] seats, no total of an event's prices can overflow a `u64`, and every
/// total stays exact in a JSON number (below 2^53).
pub const MAX_PRICE_CENTS: u64 = 1_000_000_000;

/// A layout as the organizer describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutSpec {
    pub price_tiers: Vec<PriceTier>,
    pub sections: Vec<SectionSpec>,
    /// Where the best seats are (see [`crate::best_seats`]); default the centre of the first
    /// section's front row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focal_point: Option<FocalPoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceTier {
    pub name: String,
    /// Price of one seat in the currency's minor unit (cents).
    pub price_cents: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionSpec {
    pub name: String,
    pub price_tier: String,
    pub rows: Vec<RowSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowSpec {
    pub label: String,
    pub seats: u32,
}

impl LayoutSpec {
    pub const GRID_SECTION: &'static str = "Main";
    pub const GRID_PRICE_TIER: &'static str = "Standard";

    /// The seed document's simple form: `rows` x `cols` seats in one section at one price. Rows are
    /// labelled `1..=rows`. The sizes are checked before anything is allocated from them.
    pub fn grid(rows: u32, cols: u32, price_cents: u64) -> Result<Self, LayoutError> {
        let seats = u64::from(rows) * u64::from(cols);
        if rows == 0 || rows as usize > MAX_ROWS_PER_SECTION {
            return Err(LayoutError::Invalid(format!(
                "rows must be 1 to {MAX_ROWS_PER_SECTION}"
            )));
        }
        if cols == 0 || cols > MAX_SEATS_PER_ROW {
            return Err(LayoutError::Invalid(format!(
                "cols must be 1 to {MAX_SEATS_PER_ROW}"
            )));
        }
        if seats > u64::from(MAX_SEATS_PER_EVENT) {
            return Err(LayoutError::Invalid(format!(
                "an event has at most {MAX_SEATS_PER_EVENT} seats, not {seats}"
            )));
        }
        Ok(Self {
            price_tiers: vec![PriceTier {
                name: Self::GRID_PRICE_TIER.into(),
                price_cents,
            }],
            sections: vec![SectionSpec {
                name: Self::GRID_SECTION.into(),
                price_tier: Self::GRID_PRICE_TIER.into(),
                rows: (1..=rows)
                    .map(|r| RowSpec {
                        label: r.to_string(),
                        seats: cols,
                    })
                    .collect(),
            }],
            focal_point: None,
        })
    }
}

/// What is wrong with a layout or a seat reference; each message names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("invalid layout: {0}")]
    Invalid(String),
    #[error("unknown seats: {}", .0.join(", "))]
    UnknownSeats(Vec<String>),
}

/// How a request names a seat: by its stable id, or by labels. `section` may be left out when the
/// layout has a single section (the grid form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SeatRef {
    Id(u32),
    Label {
        #[serde(default)]
        section: Option<String>,
        row: LabelValue,
        seat: LabelValue,
    },
}

/// A row or seat label given either as a string or as a number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LabelValue {
    Number(u64),
    Text(String),
}

impl LabelValue {
    fn text(&self) -> String {
        match self {
            Self::Number(n) => n.to_string(),
            Self::Text(s) => s.clone(),
        }
    }
}

impl std::fmt::Display for SeatRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Id(id) => write!(f, "seat id {id}"),
            Self::Label { section, row, seat } => match section {
                Some(s) => write!(f, "{s}/{}/{}", row.text(), seat.text()),
                None => write!(f, "{}/{}", row.text(), seat.text()),
            },
        }
    }
}

/// Where a seat is and what it costs, for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatLabel {
    pub seat_id: SeatId,
    pub section: String,
    pub row: String,
    pub seat: u32,
    pub price_tier: String,
    pub price_cents: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct RowIndex {
    pub(crate) section: usize,
    pub(crate) row: usize,
    pub(crate) first_seat: u32,
    pub(crate) seats: u32,
}

/// A validated layout with the lookups the rules need: seat id <-> labels, seat -> block.
#[derive(Debug, Clone)]
pub struct VenueLayout {
    spec: LayoutSpec,
    rows: Vec<RowIndex>,
    /// First seat id of every block, ascending; block `i` ends where block `i + 1` starts.
    block_starts: Vec<u32>,
    seat_count: u32,
    best: BestOrder,
}

impl VenueLayout {
    pub fn new(spec: LayoutSpec) -> Result<Self, LayoutError> {
        let invalid = |msg: String| Err(LayoutError::Invalid(msg));
        if spec.price_tiers.is_empty() || spec.price_tiers.len() > MAX_PRICE_TIERS {
            return invalid(format!(
                "price_tiers must list 1 to {MAX_PRICE_TIERS} tiers"
            ));
        }
        let mut tier_names = HashSet::new();
        for tier in &spec.price_tiers {
            check_label("price tier name", &tier.name)?;
            if tier.price_cents > MAX_PRICE_CENTS {
                return invalid(format!(
                    "price tier {:?} costs more than the maximum of {MAX_PRICE_CENTS} cents",
                    tier.name
                ));
            }
            if !tier_names.insert(tier.name.as_str()) {
                return invalid(format!("price tier {:?} is listed twice", tier.name));
            }
        }
        if spec.sections.is_empty() || spec.sections.len() > MAX_SECTIONS {
            return invalid(format!("sections must list 1 to {MAX_SECTIONS} sections"));
        }
        let mut section_names = HashSet::new();
        let mut rows = Vec::new();
        let mut block_starts = Vec::new();
        let mut next_seat: u64 = 0;
        for (s, section) in spec.sections.iter().enumerate() {
            check_label("section name", &section.name)?;
            if !section_names.insert(section.name.as_str()) {
                return invalid(format!("section {:?} is listed twice", section.name));
            }
            if !tier_names.contains(section.price_tier.as_str()) {
                return invalid(format!(
                    "section {:?} names price tier {:?}, which is not in price_tiers",
                    section.name, section.price_tier
                ));
            }
            if section.rows.is_empty() || section.rows.len() > MAX_ROWS_PER_SECTION {
                return invalid(format!(
                    "section {:?} must have 1 to {MAX_ROWS_PER_SECTION} rows",
                    section.name
                ));
            }
            let mut row_labels = HashSet::new();
            for (r, row) in section.rows.iter().enumerate() {
                check_label("row label", &row.label)?;
                if !row_labels.insert(row.label.as_str()) {
                    return invalid(format!(
                        "row {:?} appears twice in section {:?}",
                        row.label, section.name
                    ));
                }
                if row.seats == 0 || row.seats > MAX_SEATS_PER_ROW {
                    return invalid(format!(
                        "row {:?} of section {:?} must have 1 to {MAX_SEATS_PER_ROW} seats",
                        row.label, section.name
                    ));
                }
                if next_seat + u64::from(row.seats) > u64::from(MAX_SEATS_PER_EVENT) {
                    return invalid(format!("an event has at most {MAX_SEATS_PER_EVENT} seats"));
                }
                let first_seat = next_seat as u32;
                let mut start = 0;
                while start < row.seats {
                    block_starts.push(first_seat + start);
                    start += MAX_SEATS_PER_BLOCK;
                }
                rows.push(RowIndex {
                    section: s,
                    row: r,
                    first_seat,
                    seats: row.seats,
                });
                next_seat += u64::from(row.seats);
            }
        }
        let sections: Vec<(&str, usize)> = spec
            .sections
            .iter()
            .map(|s| (s.name.as_str(), s.rows.len()))
            .collect();
        let places = rows.iter().map(|r| (r.section, r.row, r.seats));
        let focal = spec.focal_point.clone().unwrap_or_default();
        let best = BestOrder::new(&focal, &sections, places).map_err(LayoutError::Invalid)?;
        Ok(Self {
            spec,
            rows,
            block_starts,
            seat_count: next_seat as u32,
            best,
        })
    }

    pub(crate) fn rows(&self) -> &[RowIndex] {
        &self.rows
    }

    pub(crate) fn best_order(&self) -> &BestOrder {
        &self.best
    }

    pub fn spec(&self) -> &LayoutSpec {
        &self.spec
    }

    /// The total price of `prices`, checked: `None` only past `u64` (which validated layouts, with
    /// [`MAX_PRICE_CENTS`] and [`MAX_SEATS_PER_EVENT`], cannot reach).
    pub fn total_cents(prices: impl IntoIterator<Item = u64>) -> Option<u64> {
        prices.into_iter().try_fold(0u64, u64::checked_add)
    }

    pub fn seat_count(&self) -> u32 {
        self.seat_count
    }

    pub fn block_count(&self) -> u32 {
        self.block_starts.len() as u32
    }

    /// The seat ids of block `index`.
    pub fn block_seats(&self, index: u32) -> Range<u32> {
        let i = index as usize;
        let start = self.block_starts[i];
        let end = self
            .block_starts
            .get(i + 1)
            .copied()
            .unwrap_or(self.seat_count);
        start..end
    }

    pub fn block_of(&self, seat: SeatId) -> Option<u32> {
        if seat.0 >= self.seat_count {
            return None;
        }
        Some((self.block_starts.partition_point(|&start| start <= seat.0) - 1) as u32)
    }

    /// The first seat id of every row, in layout order (sections, then rows).
    pub fn row_first_seats(&self) -> impl Iterator<Item = u32> + '_ {
        self.rows.iter().map(|r| r.first_seat)
    }

    pub fn label(&self, seat: SeatId) -> Option<SeatLabel> {
        if seat.0 >= self.seat_count {
            return None;
        }
        let row = &self.rows[self.rows.partition_point(|r| r.first_seat <= seat.0) - 1];
        let section = &self.spec.sections[row.section];
        let price_cents = self
            .spec
            .price_tiers
            .iter()
            .find(|t| t.name == section.price_tier)
            .map_or(0, |t| t.price_cents);
        Some(SeatLabel {
            seat_id: seat,
            section: section.name.clone(),
            row: section.rows[row.row].label.clone(),
            seat: seat.0 - row.first_seat + 1,
            price_tier: section.price_tier.clone(),
            price_cents,
        })
    }

    /// Resolves seat references to ids, in request order. Every reference that names no seat is
    /// reported, not just the first.
    pub fn resolve(&self, refs: &[SeatRef]) -> Result<Vec<SeatId>, LayoutError> {
        let mut ids = Vec::with_capacity(refs.len());
        let mut unknown = Vec::new();
        for r in refs {
            match self.resolve_one(r) {
                Some(id) => ids.push(id),
                None => unknown.push(r.to_string()),
            }
        }
        if unknown.is_empty() {
            Ok(ids)
        } else {
            Err(LayoutError::UnknownSeats(unknown))
        }
    }

    fn resolve_one(&self, r: &SeatRef) -> Option<SeatId> {
        match r {
            SeatRef::Id(id) => (*id < self.seat_count).then_some(SeatId(*id)),
            SeatRef::Label { section, row, seat } => {
                let section_index = match section {
                    Some(name) => self.spec.sections.iter().position(|s| &s.name == name)?,
                    None if self.spec.sections.len() == 1 => 0,
                    None => return None,
                };
                let row_label = row.text();
                let row_index = self.spec.sections[section_index]
                    .rows
                    .iter()
                    .position(|r| r.label == row_label)?;
                let row = self
                    .rows
                    .iter()
                    .find(|r| r.section == section_index && r.row == row_index)?;
                let number: u32 = seat.text().parse().ok()?;
                (1..=row.seats)
                    .contains(&number)
                    .then(|| SeatId(row.first_seat + number - 1))
            }
        }
    }
}

fn check_label(what: &str, label: &str) -> Result<(), LayoutError> {
    if label.trim().is_empty() || label.len() > MAX_LABEL_LEN || label.contains(['/', '\n']) {
        return Err(LayoutError::Invalid(format!(
            "{what} {label:?} must be 1 to {MAX_LABEL_LEN} characters without '/' or newlines"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_sections() -> LayoutSpec {
        LayoutSpec {
            price_tiers: vec![
                PriceTier {
                    name: "A".into(),
                    price_cents: 9000,
                },
                PriceTier {
                    name: "B".into(),
                    price_cents: 4000,
                },
            ],
            sections: vec![
                SectionSpec {
                    name: "Orchestra".into(),
                    price_tier: "A".into(),
                    rows: vec![
                        RowSpec {
                            label: "A".into(),
                            seats: 10,
                        },
                        RowSpec {
                            label: "B".into(),
                            seats: 450,
                        },
                    ],
                },
                SectionSpec {
                    name: "Balcony".into(),
                    price_tier: "B".into(),
                    rows: vec![RowSpec {
                        label: "1".into(),
                        seats: 5,
                    }],
                },
            ],
            focal_point: None,
        }
    }

    #[test]
    fn grid_numbers_seats_row_by_row() {
        let layout = VenueLayout::new(LayoutSpec::grid(10, 10, 5000).unwrap()).unwrap();
        assert_eq!(layout.seat_count(), 100);
        assert_eq!(layout.block_count(), 10);
        let label = layout.label(SeatId(23)).unwrap();
        assert_eq!((label.row.as_str(), label.seat), ("3", 4));
        let refs = [SeatRef::Label {
            section: None,
            row: LabelValue::Number(3),
            seat: LabelValue::Text("4".into()),
        }];
        assert_eq!(layout.resolve(&refs).unwrap(), vec![SeatId(23)]);
    }

    #[test]
    fn long_rows_are_cut_into_blocks() {
        let layout = VenueLayout::new(two_sections()).unwrap();
        // Row A: one block; row B (450 seats): 200 + 200 + 50; balcony row: one block.
        assert_eq!(layout.block_count(), 5);
        assert_eq!(layout.block_seats(1), 10..210);
        assert_eq!(layout.block_seats(3), 410..460);
        assert_eq!(layout.block_of(SeatId(0)), Some(0));
        assert_eq!(layout.block_of(SeatId(209)), Some(1));
        assert_eq!(layout.block_of(SeatId(210)), Some(2));
        assert_eq!(layout.block_of(SeatId(464)), Some(4));
        assert_eq!(layout.block_of(SeatId(465)), None);
        let balcony = layout.label(SeatId(462)).unwrap();
        assert_eq!(balcony.section, "Balcony");
        assert_eq!(balcony.price_cents, 4000);
    }

    #[test]
    fn unknown_seats_are_all_reported() {
        let layout = VenueLayout::new(two_sections()).unwrap();
        let refs = [
            SeatRef::Id(465),
            SeatRef::Label {
                section: Some("Orchestra".into()),
                row: LabelValue::Text("A".into()),
                seat: LabelValue::Number(11),
            },
            SeatRef::Label {
                section: None,
                row: LabelValue::Text("A".into()),
                seat: LabelValue::Number(1),
            },
            SeatRef::Id(3),
        ];
        match layout.resolve(&refs) {
            Err(LayoutError::UnknownSeats(bad)) => assert_eq!(bad.len(), 3),
            other => panic!("expected unknown seats, got {other:?}"),
        }
    }

    #[test]
    fn invalid_layouts_are_refused() {
        let mut spec = two_sections();
        spec.sections[1].price_tier = "Z".into();
        assert!(VenueLayout::new(spec).is_err());
        let mut spec = two_sections();
        spec.sections[0].rows[1].label = "A".into();
        assert!(VenueLayout::new(spec).is_err());
        assert!(LayoutSpec::grid(0, 10, 1).is_err());
        assert!(LayoutSpec::grid(1000, 101, 1).is_err());
        assert!(LayoutSpec::grid(u32::MAX, 1, 1).is_err());
        assert!(LayoutSpec::grid(1, u32::MAX, 1).is_err());
    }
}
