//! Seats as GraphQL shows them: a seat with its labels and price, and a seat's status change as
//! `seatUpdates` pushes it.

use async_graphql::{Enum, SimpleObject};
use uuid::Uuid;

/// A seat with its section, row, number and price.
#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct Seat {
    pub seat_id: u32,
    pub section: String,
    pub row: String,
    pub seat: u32,
    pub price_tier: String,
    pub price_cents: u64,
}

impl From<booking::views::SeatView> for Seat {
    fn from(s: booking::views::SeatView) -> Self {
        let booking::views::SeatView {
            seat_id,
            section,
            row,
            seat,
            price_tier,
            price_cents,
        } = s;
        Self {
            seat_id,
            section,
            row,
            seat,
            price_tier,
            price_cents,
        }
    }
}

/// One seat's new status, as pushed by `seatUpdates`.
#[derive(SimpleObject, Clone)]
pub struct SeatChange {
    pub event_id: Uuid,
    pub seat_id: u32,
    pub status: SeatStatus,
    /// The seat map version this change belongs to.
    pub version: i64,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "domain::SeatStatus")]
pub enum SeatStatus {
    Available,
    Held,
    Booked,
}
