//! What a seat block is told (commands), what it answers with (errors), and what it records
//! (events, each carrying a [`HoldChange`]); the rules are in [`crate::seat_block`].

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::ids::{CustomerId, EventId, HoldId, OrderId, SeatId};
use crate::stored::names::event_type;
use crate::EVENT_SCHEMA_VERSION;

/// What every hold-related domain event carries: whose hold, which seats of this block, until when,
/// and when the change happened. Shared by the seat block and the customer allowance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldChange {
    pub event_id: EventId,
    pub hold_id: HoldId,
    pub customer_id: CustomerId,
    pub seats: Vec<SeatId>,
    pub expires_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

/// Domain events of a seat block. One event may carry several seats of the block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SeatBlockEvent {
    SeatHeld(HoldChange),
    SeatBooked(HoldChange),
    SeatReleased(HoldChange),
    HoldExpired(HoldChange),
    /// The hold was taken into an order, its expiry moved to the order's payment window.
    HoldExtended {
        #[serde(flatten)]
        change: HoldChange,
        order_id: OrderId,
    },
    /// The block had booked the hold, but another block of it refused (expired first): the
    /// booking is taken back here and the seats are free again.
    BookingUndone(HoldChange),
}

impl SeatBlockEvent {
    pub fn change(&self) -> &HoldChange {
        match self {
            Self::SeatHeld(c)
            | Self::SeatBooked(c)
            | Self::SeatReleased(c)
            | Self::HoldExpired(c)
            | Self::HoldExtended { change: c, .. }
            | Self::BookingUndone(c) => c,
        }
    }
}

impl DomainEvent for SeatBlockEvent {
    fn event_type(&self) -> String {
        match self {
            Self::SeatHeld(_) => event_type::SEAT_HELD,
            Self::SeatBooked(_) => event_type::SEAT_BOOKED,
            Self::SeatReleased(_) => event_type::SEAT_RELEASED,
            Self::HoldExpired(_) => event_type::HOLD_EXPIRED,
            Self::HoldExtended { .. } => event_type::HOLD_EXTENDED,
            Self::BookingUndone(_) => event_type::BOOKING_UNDONE,
        }
        .into()
    }
    fn event_version(&self) -> String {
        EVENT_SCHEMA_VERSION.into()
    }
}

#[derive(Debug, Clone)]
pub enum SeatBlockCommand {
    HoldSeats {
        event_id: EventId,
        hold_id: HoldId,
        customer_id: CustomerId,
        seats: Vec<SeatId>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    BookHold {
        hold_id: HoldId,
        customer_id: CustomerId,
        /// When the booking was decided; every block of a multi-block hold is judged at this one
        /// instant, so they all agree on whether the hold had expired.
        decided_at: DateTime<Utc>,
    },
    ReleaseHold {
        hold_id: HoldId,
        customer_id: CustomerId,
        now: DateTime<Utc>,
    },
    /// The sweeper's command: record `HoldExpired` for every hold of the block whose time is up.
    ExpireHolds { now: DateTime<Utc> },
    /// Takes a live hold into an order, moving its expiry to `until` (the order's payment window,
    /// never earlier than it was); a hold is in one order at most.
    ExtendHold {
        order_id: OrderId,
        hold_id: HoldId,
        customer_id: CustomerId,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    /// Takes back this block's part of a booking another block refused; a no-op unless booked.
    UndoBooking { hold_id: HoldId, now: DateTime<Utc> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeatBlockError {
    #[error("seats not available: {0:?}")]
    SeatsUnavailable(Vec<SeatId>),
    #[error("a hold needs at least one seat")]
    NoSeats,
    #[error("seat {0} is listed twice")]
    DuplicateSeat(SeatId),
    #[error("hold {0} was already used for other seats or another customer")]
    HoldIdReused(HoldId),
    #[error("hold {0} does not exist in this block")]
    HoldNotFound(HoldId),
    #[error("hold {0} belongs to another customer")]
    NotHoldOwner(HoldId),
    #[error("hold {0} has expired")]
    HoldExpired(HoldId),
    #[error("hold {0} was released")]
    HoldReleased(HoldId),
    #[error("hold {0} is booked and cannot be released")]
    AlreadyBooked(HoldId),
    #[error("hold {0} is already in another order")]
    HoldInOrder(HoldId),
}
