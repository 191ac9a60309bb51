//! Where the best seats of a layout are: the organizer's focal point, and the layout's rows in
//! best-first order that [`crate::best_seats`] reads (computed once when a layout is validated).
//!
//! Policy: sections rank from the focal point's section (first), then the others in layout order;
//! within a section a row is as far as its index from the focal row, one row back counting as
//! [`ROW_DEPTH`] seats sideways; across a row, the focal point sits at `across_percent` of it.

use serde::{Deserialize, Serialize};

/// One row back is worth this many seats sideways.
pub const ROW_DEPTH: f64 = 2.0;
/// Where the best seats are, as the organizer sets it for a layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FocalPoint {
    /// The best section; default the first one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// Rows from the front of each section (0 = the first row listed).
    #[serde(default)]
    pub row_index: u32,
    /// Position along a row: 0 = its first seat, 100 = its last, 50 = the centre.
    #[serde(default = "FocalPoint::centre")]
    pub across_percent: u32,
}

impl FocalPoint {
    fn centre() -> u32 {
        50
    }
}

impl Default for FocalPoint {
    fn default() -> Self {
        Self {
            section: None,
            row_index: 0,
            across_percent: Self::centre(),
        }
    }
}

/// The rows in best-first order with each one's lower bound, computed once per layout.
#[derive(Debug, Clone)]
pub(crate) struct BestOrder {
    /// (row position in the layout, section rank, weighted squared row distance), ascending.
    pub(crate) rows: Vec<(u32, u32, f64)>,
    /// Position across each row's seats of the focal point, per layout row.
    pub(crate) focal_x: Vec<f64>,
}

impl BestOrder {
    /// The order of `rows` (section index, row index in it, seats), given the sections' names
    /// and row counts in layout order; what is wrong with `focal` if anything.
    pub(crate) fn new(
        focal: &FocalPoint,
        sections: &[(&str, usize)],
        rows: impl Iterator<Item = (usize, usize, u32)>,
    ) -> Result<Self, String> {
        let best_section = match &focal.section {
            None => 0,
            Some(name) => sections
                .iter()
                .position(|(s, _)| s == name)
                .ok_or_else(|| {
                    format!("focal_point names section {name:?}, which is not in the layout")
                })?,
        };
        if focal.across_percent > 100 {
            return Err("focal_point.across_percent must be 0 to 100".into());
        }
        let (name, row_count) = sections[best_section];
        if focal.row_index as usize >= row_count {
            return Err(format!(
                "focal_point.row_index must name a row of section {name:?} (0 to {})",
                row_count - 1
            ));
        }
        let rows: Vec<(usize, usize, u32)> = rows.collect();
        let rank = |section: usize| match section {
            s if s == best_section => 0,
            s if s < best_section => s as u32 + 1,
            s => s as u32,
        };
        let mut ranked: Vec<(u32, u32, f64)> = rows
            .iter()
            .enumerate()
            .map(|(i, &(section, row, _))| {
                let dy = ROW_DEPTH * (row as f64 - f64::from(focal.row_index));
                (i as u32, rank(section), dy * dy)
            })
            .collect();
        ranked.sort_by(|a, b| {
            (a.1, a.2, a.0)
                .partial_cmp(&(b.1, b.2, b.0))
                .expect("finite")
        });
        let focal_x = rows
            .iter()
            .map(|&(_, _, seats)| f64::from(focal.across_percent) * f64::from(seats - 1) / 100.0)
            .collect();
        Ok(Self {
            rows: ranked,
            focal_x,
        })
    }
}
