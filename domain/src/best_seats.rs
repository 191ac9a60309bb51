//! Best available seats: which free seats to offer a buyer who asks for "N best seats" instead of
//! naming them.
//!
//! Policy:
//! - Every seat has a place: its section, its row's index in the section from the front (0 = the
//!   first row listed) and its position along the row. The organizer's
//!   [`FocalPoint`](crate::focal::FocalPoint) (part of the
//!   layout, so it never changes) names a section, a row index and a position across the row
//!   (0-100 %, 50 = the centre); by default the centre of the first section's front row. The
//!   rows' best-first order is the layout's own ([`crate::focal`]), computed once per layout.
//! - "Best" = the focal point's section first, then the other sections in layout order (organizers
//!   list sections from the best outwards; each is scored from the same row index and position);
//!   within a section, closest to the focal point, where one row back counts as
//!   [`ROW_DEPTH`](crate::focal::ROW_DEPTH) seats sideways. A choice of several seats scores the
//!   sum of its seats' squared distances; ties go to the lower seat id, so a pick is
//!   deterministic.
//! - `together`: the seats are adjacent in one row (a row cut into several blocks is still one
//!   row). Without it adjacent seats are still preferred, and only when no row has enough adjacent
//!   free seats are the best single seats taken one by one.
//! - No orphans: a choice that leaves a single free seat between itself and a taken seat or the
//!   row's end is made only when every other choice does too (as seats.io's best-available).
//! - Pure: the caller says which seats are free, row by row and lazily (rows are asked for
//!   best-first, and a pick stops at the first row that cannot beat what it found, or after
//!   [`UNKNOWN_ROWS_PER_PICK`] rows it does not know yet), and the writers still decide the hold;
//!   a pick is only a proposal.

use std::ops::Range;

use crate::ids::SeatId;
use crate::layout::{LayoutError, RowIndex, SeatRef, VenueLayout};

/// The most seats one best-available request may ask for.
pub const MAX_BEST_SEATS: u32 = 10;
/// A pick that meets this many rows it does not know stops and asks for them (what to read then
/// is the caller's choice: the core reads every block no writer holds, `booking::best_seats`).
pub const UNKNOWN_ROWS_PER_PICK: usize = 16;

/// What a buyer asks to hold: seats by name, or the best available.
#[derive(Debug, Clone, PartialEq)]
pub enum SeatChoice {
    Named(Vec<SeatRef>),
    Best(BestSeats),
}

impl From<Vec<SeatRef>> for SeatChoice {
    fn from(refs: Vec<SeatRef>) -> Self {
        Self::Named(refs)
    }
}

/// A buyer's request for the best free seats.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BestSeats {
    pub quantity: u32,
    pub together: bool,
    /// Only seats of this section.
    pub section: Option<String>,
    /// Only seats of this price tier.
    pub price_tier: Option<String>,
}

/// What a pick found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BestPick {
    /// The seats to hold, best first within their row order (ascending ids).
    Seats(Vec<SeatId>),
    /// A row it needed was not known (the caller returned `None` for it); learn it and ask again.
    Unknown,
    /// Not enough seats: `free` seats are free in the request's scope (maybe not adjacent).
    NotEnough { free: u32 },
}

/// One choice of seats in a row, comparable best-first.
#[derive(Debug, Clone, PartialEq)]
struct Choice {
    orphan: bool,
    rank: u32,
    score: f64,
    seats: Range<u32>,
}

impl Choice {
    fn better_than(&self, other: &Choice) -> bool {
        (self.orphan, self.rank, self.score, self.seats.start)
            .partial_cmp(&(other.orphan, other.rank, other.score, other.seats.start))
            .expect("finite")
            .is_lt()
    }
}

impl VenueLayout {
    /// Refuses a best-available request that asks for no seats, too many, or an unknown section or
    /// price tier.
    pub fn check_best(&self, ask: &BestSeats) -> Result<(), LayoutError> {
        let spec = self.spec();
        let mut problems = Vec::new();
        if !(1..=MAX_BEST_SEATS).contains(&ask.quantity) {
            problems.push(format!("quantity must be 1 to {MAX_BEST_SEATS}"));
        }
        if let Some(name) = &ask.section {
            if !spec.sections.iter().any(|s| &s.name == name) {
                problems.push(format!("section {name:?} is not in this event's layout"));
            }
        }
        if let Some(name) = &ask.price_tier {
            if !spec.price_tiers.iter().any(|t| &t.name == name) {
                problems.push(format!("price tier {name:?} is not in this event's layout"));
            }
        }
        match problems.is_empty() {
            true => Ok(()),
            false => Err(LayoutError::Invalid(problems.join("; "))),
        }
    }

    /// The best free seats for `ask` (see the module policy). `row_free(seats, free)` pushes onto
    /// `free` (empty) one flag per seat of the range, true when free, and returns true; or
    /// returns false when it does not know the row yet.
    pub fn best_seats(
        &self,
        ask: &BestSeats,
        row_free: &mut dyn FnMut(Range<u32>, &mut Vec<bool>) -> bool,
    ) -> Result<BestPick, LayoutError> {
        self.check_best(ask)?;
        let spec = self.spec();
        let order = self.best_order();
        let in_scope = |row: &RowIndex| {
            let section = &spec.sections[row.section];
            ask.section.as_ref().is_none_or(|s| &section.name == s)
                && ask
                    .price_tier
                    .as_ref()
                    .is_none_or(|t| &section.price_tier == t)
        };
        let q = ask.quantity;
        let mut best: Option<Choice> = None;
        let mut unknown = 0;
        let mut free_total = 0u32;
        // Rows read with free seats, kept for single seats: (layout row, free seats).
        let mut read: Vec<(u32, Vec<bool>)> = Vec::new();
        let mut free = Vec::new();
        for &(i, rank, dy2) in &order.rows {
            let row = &self.rows()[i as usize];
            if !in_scope(row) {
                continue;
            }
            if let Some(b) = &best {
                let bound = f64::from(q) * dy2;
                if !b.orphan && (rank, bound) > (b.rank, b.score) {
                    break;
                }
            }
            let seats = row.first_seat..row.first_seat + row.seats;
            free.clear();
            if !row_free(seats, &mut free) {
                unknown += 1;
                if unknown == UNKNOWN_ROWS_PER_PICK {
                    break;
                }
                continue;
            }
            let count = free.iter().filter(|f| **f).count() as u32;
            if count == 0 {
                continue;
            }
            free_total += count;
            if count >= q {
                let fx = order.focal_x[i as usize];
                for choice in windows(&free, q, fx, dy2, rank, row.first_seat) {
                    if best.as_ref().is_none_or(|b| choice.better_than(b)) {
                        best = Some(choice);
                    }
                }
            }
            if !ask.together {
                read.push((i, free.clone()));
            }
        }
        if unknown > 0 {
            return Ok(BestPick::Unknown);
        }
        if let Some(choice) = best {
            return Ok(BestPick::Seats(choice.seats.map(SeatId).collect()));
        }
        if ask.together || free_total < q {
            return Ok(BestPick::NotEnough { free: free_total });
        }
        Ok(BestPick::Seats(self.best_singles(q, &mut read)))
    }

    /// The `q` best single seats among rows already read, one at a time.
    fn best_singles(&self, q: u32, read: &mut [(u32, Vec<bool>)]) -> Vec<SeatId> {
        let order = self.best_order();
        let rank_of: std::collections::HashMap<u32, (u32, f64)> =
            order.rows.iter().map(|&(i, r, d)| (i, (r, d))).collect();
        let mut picked = Vec::new();
        for _ in 0..q {
            let mut best: Option<(usize, Choice)> = None;
            for (n, (i, free)) in read.iter().enumerate() {
                let (rank, dy2) = rank_of[i];
                let row = &self.rows()[*i as usize];
                let fx = order.focal_x[*i as usize];
                for choice in windows(free, 1, fx, dy2, rank, row.first_seat) {
                    if best.as_ref().is_none_or(|(_, b)| choice.better_than(b)) {
                        best = Some((n, choice));
                    }
                }
            }
            let Some((n, choice)) = best else { break };
            let (i, free) = &mut read[n];
            free[(choice.seats.start - self.rows()[*i as usize].first_seat) as usize] = false;
            picked.push(SeatId(choice.seats.start));
        }
        picked.sort();
        picked
    }
}

/// Every run of `q` free adjacent seats in a row, scored.
fn windows(
    free: &[bool],
    q: u32,
    fx: f64,
    dy2: f64,
    rank: u32,
    first_seat: u32,
) -> impl Iterator<Item = Choice> + '_ {
    let q = q as usize;
    let n = free.len();
    let is_free = move |i: isize| i >= 0 && (i as usize) < n && free[i as usize];
    (0..n.saturating_sub(q - 1))
        .filter(move |&s| free[s..s + q].iter().all(|f| *f))
        .map(move |s| {
            let (s, e) = (s as isize, (s + q) as isize);
            // A single free seat left beside the choice, with a taken seat or the row's end
            // beyond it.
            let orphan = (is_free(s - 1) && !is_free(s - 2)) || (is_free(e) && !is_free(e + 1));
            let score = (s..e)
                .map(|i| {
                    let dx = i as f64 - fx;
                    dx * dx + dy2
                })
                .sum();
            Choice {
                orphan,
                rank,
                score,
                seats: first_seat + s as u32..first_seat + e as u32,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{FocalPoint, LayoutSpec, PriceTier, RowSpec, SectionSpec};

    /// Given rows of seats in one section ("Main") and, when asked, a "Balcony" behind it.
    fn venue(rows: &[u32], balcony: &[u32], focal: Option<FocalPoint>) -> VenueLayout {
        let section = |name: &str, tier: &str, rows: &[u32]| SectionSpec {
            name: name.into(),
            price_tier: tier.into(),
            rows: rows
                .iter()
                .enumerate()
                .map(|(i, seats)| RowSpec {
                    label: (i + 1).to_string(),
                    seats: *seats,
                })
                .collect(),
        };
        let mut sections = vec![section("Main", "A", rows)];
        if !balcony.is_empty() {
            sections.push(section("Balcony", "B", balcony));
        }
        VenueLayout::new(LayoutSpec {
            price_tiers: vec![
                PriceTier {
                    name: "A".into(),
                    price_cents: 5_000,
                },
                PriceTier {
                    name: "B".into(),
                    price_cents: 2_000,
                },
            ],
            sections,
            focal_point: focal,
        })
        .unwrap()
    }

    fn ask(quantity: u32, together: bool) -> BestSeats {
        BestSeats {
            quantity,
            together,
            ..Default::default()
        }
    }

    /// Picks against a set of taken seat ids.
    fn pick(layout: &VenueLayout, ask: &BestSeats, taken: &[u32]) -> BestPick {
        layout
            .best_seats(ask, &mut |seats, free| {
                free.extend(seats.map(|s| !taken.contains(&s)));
                true
            })
            .unwrap()
    }

    fn ids(seats: &[u32]) -> BestPick {
        BestPick::Seats(seats.iter().copied().map(SeatId).collect())
    }

    #[test]
    fn given_an_empty_hall_when_two_together_are_asked_then_the_centre_of_the_front_row() {
        let hall = venue(&[10, 10, 10], &[], None);
        // Seats 0-9 are the front row; its centre is between seats 4 and 5.
        assert_eq!(pick(&hall, &ask(2, true), &[]), ids(&[4, 5]));
        assert_eq!(pick(&hall, &ask(3, true), &[]), ids(&[3, 4, 5]));
    }

    #[test]
    fn given_a_focal_point_when_asked_then_the_seats_nearest_it() {
        let focal = FocalPoint {
            section: Some("Balcony".into()),
            row_index: 1,
            across_percent: 0,
        };
        let hall = venue(&[10, 10], &[6, 6, 6], Some(focal));
        // The balcony's second row starts at seat 26: its first seats are the best.
        assert_eq!(pick(&hall, &ask(2, true), &[]), ids(&[26, 27]));
    }

    #[test]
    fn given_taken_seats_when_asked_then_only_free_adjacent_seats_are_picked() {
        let hall = venue(&[10, 10], &[], None);
        // Front row: only its ends 0, 1, 8, 9 are free; the second row's centre is nearer.
        let taken = [2, 3, 4, 5, 6, 7];
        assert_eq!(pick(&hall, &ask(2, true), &taken), ids(&[14, 15]));
        assert_eq!(pick(&hall, &ask(3, true), &taken), ids(&[13, 14, 15]));
        // With the second row taken too, the front row's ends (the left one on a tie).
        let taken: Vec<u32> = (2..8).chain(10..20).collect();
        assert_eq!(pick(&hall, &ask(2, true), &taken), ids(&[0, 1]));
        assert_eq!(
            pick(&hall, &ask(3, true), &taken),
            BestPick::NotEnough { free: 4 }
        );
    }

    #[test]
    fn given_a_choice_that_would_leave_one_seat_alone_then_a_row_further_back_is_picked() {
        let hall = venue(&[5, 5], &[], None);
        // Front row: 0, 1, 2 free, 3 and 4 taken. Two of them leave the third alone either way;
        // in the empty second row (5-9) only its ends leave no seat alone.
        let taken = [3, 4];
        assert_eq!(pick(&hall, &ask(2, true), &taken), ids(&[5, 6]));
        // When every row would leave one alone, the best of them is still offered.
        let taken = [3, 4, 8, 9];
        assert_eq!(pick(&hall, &ask(2, true), &taken), ids(&[1, 2]));
    }

    #[test]
    fn given_no_adjacent_seats_when_together_is_asked_then_not_enough_else_best_singles() {
        let hall = venue(&[5, 5], &[], None);
        let taken = [1, 3, 5, 6, 7, 8, 9];
        // Free: 0, 2, 4, no two adjacent.
        assert_eq!(
            pick(&hall, &ask(2, true), &taken),
            BestPick::NotEnough { free: 3 }
        );
        assert_eq!(pick(&hall, &ask(2, false), &taken), ids(&[0, 2]));
        assert_eq!(
            pick(&hall, &ask(4, false), &taken),
            BestPick::NotEnough { free: 3 }
        );
        let all: Vec<u32> = (0..10).collect();
        assert_eq!(
            pick(&hall, &ask(1, false), &all),
            BestPick::NotEnough { free: 0 }
        );
    }

    #[test]
    fn given_a_section_or_tier_when_asked_then_only_its_seats_and_unknown_ones_refused() {
        let hall = venue(&[4], &[4], None);
        let balcony = BestSeats {
            quantity: 2,
            together: true,
            section: Some("Balcony".into()),
            price_tier: None,
        };
        // Balcony seats 4-7: 5-6 would leave 4 and 7 alone, so 4-5.
        assert_eq!(pick(&hall, &balcony, &[]), ids(&[4, 5]));
        let tier_b = BestSeats {
            section: None,
            price_tier: Some("B".into()),
            ..balcony.clone()
        };
        assert_eq!(pick(&hall, &tier_b, &[]), ids(&[4, 5]));
        let nowhere = BestSeats {
            section: Some("Pit".into()),
            ..balcony
        };
        assert!(hall.best_seats(&nowhere, &mut |_, _| false).is_err());
        assert!(hall.check_best(&ask(0, true)).is_err());
        assert!(hall.check_best(&ask(MAX_BEST_SEATS + 1, true)).is_err());
    }

    #[test]
    fn given_rows_not_known_yet_when_asked_then_unknown_and_only_the_rows_needed_are_read() {
        let hall = venue(&[10; 20], &[], None);
        assert_eq!(
            hall.best_seats(&ask(2, true), &mut |_, _| false).unwrap(),
            BestPick::Unknown
        );
        let mut asked = 0;
        let picked = hall
            .best_seats(&ask(2, true), &mut |seats, free| {
                asked += 1;
                free.resize(seats.len(), true);
                true
            })
            .unwrap();
        assert_eq!(picked, ids(&[4, 5]));
        // The front row's pick beats every row behind it after the second.
        assert!(asked <= 2, "read {asked} rows");
    }

    #[test]
    fn given_invalid_focal_points_then_the_layout_is_refused() {
        let bad = |focal: FocalPoint| {
            VenueLayout::new(LayoutSpec {
                focal_point: Some(focal),
                ..LayoutSpec::grid(3, 3, 0).unwrap()
            })
            .is_err()
        };
        assert!(bad(FocalPoint {
            section: Some("Pit".into()),
            ..Default::default()
        }));
        assert!(bad(FocalPoint {
            row_index: 3,
            ..Default::default()
        }));
        assert!(bad(FocalPoint {
            across_percent: 101,
            ..Default::default()
        }));
    }

    #[test]
    fn given_a_crowd_asking_one_after_another_then_the_hall_fills_without_a_taken_seat() {
        // Picks held one after another, as the writers would: never a taken seat, always
        // adjacent, and pairs fill all but the seats pairs cannot fill.
        let hall = venue(&[9, 10, 11, 7], &[], None);
        let mut taken: Vec<u32> = Vec::new();
        loop {
            match pick(&hall, &ask(2, true), &taken) {
                BestPick::Seats(seats) => {
                    assert_eq!(seats.len(), 2);
                    assert_eq!(seats[1].0, seats[0].0 + 1, "adjacent");
                    assert_eq!(
                        hall.label(seats[0]).unwrap().row,
                        hall.label(seats[1]).unwrap().row
                    );
                    for s in &seats {
                        assert!(!taken.contains(&s.0), "seat {} taken twice", s.0);
                        taken.push(s.0);
                    }
                }
                BestPick::NotEnough { free } => {
                    // Odd rows leave one seat each at most.
                    assert!(free <= 3, "{free} seats left");
                    break;
                }
                BestPick::Unknown => unreachable!(),
            }
        }
        // The last seats go singly when together is not required.
        while let BestPick::Seats(seats) = pick(&hall, &ask(1, false), &taken) {
            taken.extend(seats.iter().map(|s| s.0));
        }
        assert_eq!(taken.len(), 37);
    }
}
