//! The names of what is stored, with nothing else: the aggregates write these, every reader reads
//! them (see the policy of [`crate::stored`]).

/// The `aggregate_type` column: each aggregate's `TYPE`.
pub mod aggregate_type {
    pub const TICKETED_EVENT: &str = "TicketedEvent";
    pub const SEAT_BLOCK: &str = "SeatBlock";
    pub const CUSTOMER_ALLOWANCE: &str = "CustomerAllowance";
    pub const ORDER: &str = "Order";
}

/// The `event_type` column: what each domain event's `event_type()` returns.
pub mod event_type {
    pub const EVENT_CREATED: &str = "EventCreated";
    pub const SEAT_HELD: &str = "SeatHeld";
    pub const SEAT_BOOKED: &str = "SeatBooked";
    pub const SEAT_RELEASED: &str = "SeatReleased";
    pub const HOLD_EXPIRED: &str = "HoldExpired";
    pub const BOOKING_UNDONE: &str = "BookingUndone";
    pub const HOLD_EXTENDED: &str = "HoldExtended";
    pub const ALLOWANCE_RESERVED: &str = "AllowanceReserved";
    pub const ALLOWANCE_COMMITTED: &str = "AllowanceCommitted";
    pub const ALLOWANCE_EXTENDED: &str = "AllowanceExtended";
    pub const ALLOWANCE_RETURNED: &str = "AllowanceReturned";
    pub const ORDER_PLACED: &str = "OrderPlaced";
    pub const PAYMENT_REQUESTED: &str = "PaymentRequested";
    pub const PAYMENT_SUCCEEDED: &str = "PaymentSucceeded";
    pub const PAYMENT_FAILED: &str = "PaymentFailed";
    pub const ORDER_CONFIRMED: &str = "OrderConfirmed";
    pub const ORDER_EXPIRED: &str = "OrderExpired";
    pub const ORDER_CANCELLED: &str = "OrderCancelled";
    pub const REFUND_REQUESTED: &str = "RefundRequested";
    pub const ORDER_REFUNDED: &str = "OrderRefunded";
    pub const HOLD_REPLACED: &str = "HoldReplaced";
}

/// Payload fields that other layers read in SQL.
pub mod field {
    /// A hold's expiry, in every event that carries a [`crate::HoldChange`].
    pub const EXPIRES_AT: &str = "expires_at";
}

/// SQL for the text of `field` inside a stored payload of `event_type` (payloads are externally
/// tagged: `{"SeatHeld": {...}}`), for the `events` row aliased `alias`.
///
/// Only the constants of this module are meant as arguments; they hold no quotes.
pub fn payload_text_sql(alias: &str, event_type: &str, field: &str) -> String {
    format!("({alias}.payload -> '{event_type}' ->> '{field}')")
}
