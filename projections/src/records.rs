//! The read models' records, as stored in Postgres, cached in Redis and published to subscribers.
//! Both the projection that writes them ([`crate::read_models`]) and the cache ([`crate::cache`])
//! speak these types.

use chrono::{DateTime, Utc};
use domain::{EventDefinition, HoldChange, HoldStatus, HoldTrack, SeatId, SeatStatus};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const AVAILABLE: u8 = SeatStatus::Available.code();
pub const HELD: u8 = SeatStatus::Held.code();
pub const BOOKED: u8 = SeatStatus::Booked.code();

/// A hold as the read models keep it (`rm_holds`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct HoldRecord {
    pub hold_id: Uuid,
    pub event_id: Uuid,
    pub customer_id: String,
    /// As last recorded; [`HoldRecord::status_at`] applies lazy expiry.
    #[sqlx(try_from = "String")]
    pub status: HoldStatus,
    pub seats: Vec<i32>,
    pub held_seats: i32,
    #[serde(default)]
    pub booked_seats: i32,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl HoldRecord {
    /// A hold the read model has no row for yet, first seen through `change`.
    pub fn first_seen(change: &HoldChange) -> Self {
        let track = HoldTrack::new(change);
        Self {
            hold_id: change.hold_id.0,
            event_id: change.event_id.0,
            customer_id: change.customer_id.to_string(),
            status: track.status,
            seats: Vec::new(),
            held_seats: 0,
            booked_seats: 0,
            expires_at: track.expires_at,
            created_at: change.at,
            updated_at: change.at,
            version: 0,
        }
    }

    /// The hold's lifecycle as recorded, to apply further events to.
    pub fn track(&self) -> HoldTrack {
        HoldTrack {
            status: self.status,
            seats: self.seats.iter().map(|s| SeatId(*s as u32)).collect(),
            held_seats: self.held_seats as u32,
            booked_seats: self.booked_seats as u32,
            expires_at: self.expires_at,
        }
    }

    /// Records where the lifecycle has got to.
    pub fn follow(&mut self, track: &HoldTrack) {
        self.status = track.status;
        self.seats = track.seats.iter().map(|s| s.0 as i32).collect();
        self.held_seats = track.held_seats as i32;
        self.booked_seats = track.booked_seats as i32;
        self.expires_at = track.expires_at;
    }

    /// The status as of `now`: a hold not booked by its expiry is over, written down or not.
    pub fn status_at(&self, now: DateTime<Utc>) -> HoldStatus {
        self.status.at(self.expires_at, now)
    }
}

/// The columns of `rm_holds`, in [`HoldRecord`]'s order.
pub(crate) const HOLD_COLUMNS: &str = "hold_id, event_id, customer_id, status, seats, held_seats, \
                                       booked_seats, expires_at, created_at, updated_at, version";

/// An event's seat map: one byte per seat id (`A`, `H`, `B`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatMap {
    pub event_id: Uuid,
    pub seats: Vec<u8>,
    pub version: i64,
}

impl SeatMap {
    /// (available, held, booked) among `range` of seat ids.
    pub fn counts(&self, range: std::ops::Range<usize>) -> (u32, u32, u32) {
        counts(&self.seats, range)
    }
}

/// (available, held, booked) among `range` of a compact seat map.
pub fn counts(seats: &[u8], range: std::ops::Range<usize>) -> (u32, u32, u32) {
    let end = range.end.min(seats.len());
    let start = range.start.min(end);
    seats[start..end]
        .iter()
        .fold((0, 0, 0), |(a, h, b), s| match *s {
            HELD => (a, h + 1, b),
            BOOKED => (a, h, b + 1),
            _ => (a + 1, h, b),
        })
}

/// Seat status changes of one event from one committed batch, as cached and published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatUpdate {
    pub event_id: Uuid,
    /// The seat map's version before and after this batch.
    pub from_version: i64,
    pub version: i64,
    /// `(seat_id, status)` in the order they happened; a seat may appear more than once.
    pub changes: Vec<(u32, char)>,
    /// (available, held, booked) after the batch.
    #[serde(skip)]
    pub counts: (u32, u32, u32),
}

/// A ticketed event as listed.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub definition: EventDefinition,
    pub seat_count: i32,
    pub list_order: i64,
}

/// What a committed batch hands to the cache.
#[derive(Debug, Default)]
pub struct ReadModelChanges {
    pub seats: Vec<SeatUpdate>,
    pub holds: Vec<HoldRecord>,
    pub orders: Vec<crate::orders::OrderRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_the_compact_encoding_within_bounds() {
        assert_eq!(counts(b"AHBBA", 0..5), (2, 1, 2));
        assert_eq!(counts(b"AHBBA", 3..99), (1, 0, 1));
        assert_eq!(counts(b"AHB", 5..9), (0, 0, 0));
    }
}
