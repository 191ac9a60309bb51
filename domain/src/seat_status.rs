//! A seat's status as buyers see it, and its byte in the compact seat map every reader shares.

use serde::{Deserialize, Serialize};

/// A seat's status as buyers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeatStatus {
    Available,
    Held,
    Booked,
}

impl SeatStatus {
    /// The seat's byte in a compact seat map (one byte per seat id): `A`, `H` or `B`. Every seat
    /// map, strong or projected, uses this encoding.
    pub const fn code(self) -> u8 {
        match self {
            Self::Available => b'A',
            Self::Held => b'H',
            Self::Booked => b'B',
        }
    }

    /// The status a compact seat map's byte stands for (anything unknown reads as available).
    pub const fn from_code(code: u8) -> Self {
        match code {
            b'H' => Self::Held,
            b'B' => Self::Booked,
            _ => Self::Available,
        }
    }
}
