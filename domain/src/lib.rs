//! SeatGrid's booking rules, as pure logic with no I/O.
//!
//! Vocabulary: a **ticketed event** is the show people buy seats for ([`TicketedEvent`]); a **domain
//! event** is a fact recorded in the event store (`SeatBlockEvent`, `TicketedEventEvent`,
//! `CustomerAllowanceEvent`). The types always say which one they mean.
//!
//! Policy, in one place:
//! - Seats are grouped into **seat blocks** ([`seat_block::SeatBlock`]), the consistency boundary: a
//!   command decides against one block's history and appends atomically to it, so two live holds
//!   can never own one seat.
//! - A hold carries its expiry. A seat under an expired hold is available to everybody, whether or
//!   not `HoldExpired` was written yet; taking it records the expiry first.
//! - A hold and a booking across several blocks are each all or nothing: what one block refused is
//!   taken back in the others (`SeatReleased`, `BookingUndone`).
//! - Aggregate state is bounded whatever the history (live holds and the last few closed ones), so
//!   snapshots stay small and a command's cost does not grow with time.
//! - A customer's held and booked seats per ticketed event are capped
//!   ([`customer_allowance::CustomerAllowance`]), counted conservatively: a crash can only make the
//!   count too high (until the hold's expiry), never too low.
//! - What is stored is named and decoded in one module, [`stored`]; a hold's status is derived in
//!   one module, [`hold`].
//! - Time is an input: every command carries the `now` it is judged at, so the rules are testable
//!   and replay gives the same answers.

pub mod best_seats;
pub mod customer_allowance;
pub mod focal;
pub mod hold;
pub mod ids;
pub mod known_event;
pub mod layout;
pub mod order;
mod order_messages;
pub mod seat_block;
mod seat_block_messages;
pub mod seat_status;
pub mod stored;
pub mod ticketed_event;

pub use best_seats::{BestPick, BestSeats, SeatChoice, MAX_BEST_SEATS};
pub use customer_allowance::{
    AllowanceEntry, AllowanceError, AllowanceState, CustomerAllowance, CustomerAllowanceCommand,
    CustomerAllowanceEvent, ReturnReason,
};
pub use hold::{HoldEvent, HoldStatus, HoldTrack};
pub use ids::{CustomerId, EventId, HoldId, InvalidId, OrderId, SeatBlockId, SeatId};
pub use known_event::{EventCatalog, KnownEvent};
pub use layout::{
    FocalPoint, LayoutError, LayoutSpec, PriceTier, RowSpec, SeatLabel, SeatRef, SectionSpec,
    VenueLayout,
};
pub use order::{
    Order, OrderCommand, OrderError, OrderEvent, OrderPlaced, OrderStatus, RefundReason,
};
pub use seat_block::{
    BlockHold, HoldChange, HoldProgress, SeatBlock, SeatBlockCommand, SeatBlockError,
    SeatBlockEvent, SeatStatus,
};
pub use stored::{DecodeError, StoredEvent};
pub use ticketed_event::{
    EventDefinition, EventPolicy, NewEvent, TicketedEvent, TicketedEventCommand,
    TicketedEventError, TicketedEventEvent,
};

/// Version of every domain event's payload schema, stored beside each event
/// (`event_version`) so a later schema can upcast older events.
pub const EVENT_SCHEMA_VERSION: &str = "1";
