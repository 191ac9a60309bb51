//! The core's one error type: why a command or read was refused.
//!
//! Policy: each refusal has one stable `code` (REST puts it in problem+json, GraphQL in
//! `extensions.code`, metrics count by it), one [`ErrorKind`] that each adapter maps to its own
//! transport in one place, and the same machine-readable [`CommandError::details`] for both.
//! Causes of `Unavailable` and `Internal` are for the log, never for the caller.

use domain::{EventId, HoldId, OrderId};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::store::{LoadError, StoreError};
use crate::views::SeatView;

/// What sort of refusal an error is, for adapters to map to a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Something the caller must add (who they are).
    BadRequest,
    /// A request that can never succeed as sent.
    Invalid,
    NotFound,
    /// No valid credentials: who is asking is unknown.
    Unauthenticated,
    /// Someone else's resource, or not allowed for the caller's role.
    Forbidden,
    /// The state of the seats or the hold refuses it now.
    Conflict,
    /// Too many concurrent changes, or the store cannot be reached: retry later.
    Unavailable,
    /// More requests queued for the same seats than are admitted: retry after a moment.
    Busy,
    Internal,
}

impl ErrorKind {
    /// The HTTP status a refusal of this kind is reported with: REST's status, and GraphQL's
    /// `extensions.status` (so a client sees the same number through either).
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Invalid => 422,
            Self::NotFound => 404,
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::Conflict => 409,
            Self::Unavailable => 503,
            Self::Busy => 429,
            Self::Internal => 500,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("invalid request: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("{}", .0.join("; "))]
    InvalidSeats(Vec<String>),
    #[error("{0}")]
    InvalidCustomerId(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("no such seats in this event: {}", .0.join(", "))]
    UnknownSeats(Vec<String>),
    #[error("seats listed more than once: {}", seat_list(.0))]
    DuplicateSeats(Vec<SeatView>),
    #[error("a hold needs at least one seat")]
    NoSeats,
    #[error("at most {max} seats per customer for this event; {requested} requested")]
    TooManySeats { max: u32, requested: u32 },
    #[error("customer may hold or book at most {limit} seats for this event and already has {in_use}; {requested} more requested")]
    CustomerLimitExceeded {
        limit: u32,
        in_use: u32,
        requested: u32,
    },
    #[error("event {0} does not exist")]
    EventNotFound(EventId),
    #[error("hold {0} does not exist")]
    HoldNotFound(HoldId),
    #[error("order {0} does not exist")]
    OrderNotFound(OrderId),
    #[error("order {0} is being paid for and booked; cancel it once it is confirmed")]
    OrderNotCancellable(OrderId),
    #[error("seats not available: {}", seat_list(.0))]
    SeatsUnavailable(Vec<SeatView>),
    #[error("{}", not_enough(*.requested, *.free, *.together))]
    NotEnoughSeats {
        requested: u32,
        /// Free seats in the scope asked for (maybe not adjacent).
        free: u32,
        together: bool,
    },
    #[error("hold {0} belongs to another customer")]
    NotHoldOwner(HoldId),
    #[error("hold {0} has expired")]
    HoldExpired(HoldId),
    #[error("hold {0} was released")]
    HoldReleased(HoldId),
    #[error("hold {0} is already booked")]
    HoldBooked(HoldId),
    #[error("hold {0} never took effect")]
    HoldFailed(HoldId),
    #[error("Idempotency-Key must be 1 to {max} visible ASCII characters")]
    InvalidIdempotencyKey { max: usize },
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyInFlight,
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    #[error("too many concurrent changes to the same seats; try again shortly")]
    Contention,
    #[error("too many requests are waiting for these seats; try again in a moment")]
    Busy,
    #[error("the event store is unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

fn not_enough(requested: u32, free: u32, together: bool) -> String {
    match (free, together) {
        (0, _) => "no seats are left (in the section or price tier asked for)".into(),
        (_, true) => format!("no {requested} seats together are left; {free} seats are free apart"),
        (_, false) => format!("only {free} seats are left; {requested} asked for"),
    }
}

/// The machine-readable fields of an error (see [`CommandError::detail_fields`]), each variant
/// the members it adds to an error body.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum DetailFields<'a> {
    Errors {
        errors: &'a [String],
    },
    Unknown {
        seats: &'a [String],
    },
    Seats {
        seats: &'a [SeatView],
    },
    NotEnough {
        requested: u32,
        seats_free: u32,
        together: bool,
    },
    TooMany {
        max_seats_per_customer: u32,
        requested: u32,
    },
    OverLimit {
        max_seats_per_customer: u32,
        seats_in_use: u32,
        requested: u32,
    },
    None {},
}

fn seat_list(seats: &[SeatView]) -> String {
    seats
        .iter()
        .map(|s| s.seat_id.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl CommandError {
    /// The stable code clients see and metrics count.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_request",
            Self::InvalidSeats(_) => "invalid_seat",
            Self::InvalidCustomerId(_) => "invalid_customer_id",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::UnknownSeats(_) => "unknown_seats",
            Self::DuplicateSeats(_) => "duplicate_seats",
            Self::NoSeats => "no_seats",
            Self::TooManySeats { .. } => "too_many_seats",
            Self::CustomerLimitExceeded { .. } => "customer_limit_exceeded",
            Self::EventNotFound(_) => "event_not_found",
            Self::HoldNotFound(_) => "hold_not_found",
            Self::OrderNotFound(_) => "order_not_found",
            Self::OrderNotCancellable(_) => "order_not_cancellable",
            Self::SeatsUnavailable(_) => "seats_unavailable",
            Self::NotEnoughSeats { free: 0, .. } => "sold_out",
            Self::NotEnoughSeats { .. } => "not_enough_seats",
            Self::NotHoldOwner(_) => "not_hold_owner",
            Self::HoldExpired(_) => "hold_expired",
            Self::HoldReleased(_) => "hold_released",
            Self::HoldBooked(_) => "hold_booked",
            Self::HoldFailed(_) => "hold_failed",
            Self::InvalidIdempotencyKey { .. } => "invalid_idempotency_key",
            Self::IdempotencyInFlight => "idempotency_request_in_flight",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::Contention => "contention",
            Self::Busy => "busy",
            Self::Unavailable(_) => "store_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            Self::InvalidIdempotencyKey { .. } => K::BadRequest,
            Self::Unauthenticated(_) => K::Unauthenticated,
            Self::Invalid(_)
            | Self::InvalidSeats(_)
            | Self::InvalidCustomerId(_)
            | Self::UnknownSeats(_)
            | Self::DuplicateSeats(_)
            | Self::NoSeats
            | Self::TooManySeats { .. }
            | Self::CustomerLimitExceeded { .. }
            | Self::IdempotencyKeyReused => K::Invalid,
            Self::EventNotFound(_) | Self::HoldNotFound(_) | Self::OrderNotFound(_) => K::NotFound,
            Self::NotHoldOwner(_) | Self::Forbidden(_) => K::Forbidden,
            Self::SeatsUnavailable(_)
            | Self::NotEnoughSeats { .. }
            | Self::HoldExpired(_)
            | Self::HoldReleased(_)
            | Self::HoldBooked(_)
            | Self::HoldFailed(_)
            | Self::OrderNotCancellable(_)
            | Self::IdempotencyInFlight => K::Conflict,
            Self::Contention | Self::Unavailable(_) => K::Unavailable,
            Self::Busy => K::Busy,
            Self::Internal(_) => K::Internal,
        }
    }

    /// How long a caller should wait before retrying, when retrying can help.
    pub fn retry_after_seconds(&self) -> Option<u32> {
        match self {
            Self::Contention | Self::Busy | Self::IdempotencyInFlight => Some(1),
            Self::Unavailable(_) => Some(5),
            _ => None,
        }
    }

    /// Machine-readable fields beside the message (the seats refused, the limits, every problem).
    pub fn details(&self) -> Map<String, Value> {
        match serde_json::to_value(self.detail_fields()) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }

    /// [`Self::details`] as they serialize, borrowed: written straight into an error body
    /// without building a `Value` (most answers of a flash sale are refusals).
    pub fn detail_fields(&self) -> DetailFields<'_> {
        match self {
            Self::Invalid(problems) | Self::InvalidSeats(problems) => {
                DetailFields::Errors { errors: problems }
            }
            Self::UnknownSeats(seats) => DetailFields::Unknown { seats },
            Self::DuplicateSeats(seats) | Self::SeatsUnavailable(seats) => {
                DetailFields::Seats { seats }
            }
            Self::NotEnoughSeats {
                requested,
                free,
                together,
            } => DetailFields::NotEnough {
                requested: *requested,
                seats_free: *free,
                together: *together,
            },
            Self::TooManySeats { max, requested } => DetailFields::TooMany {
                max_seats_per_customer: *max,
                requested: *requested,
            },
            Self::CustomerLimitExceeded {
                limit,
                in_use,
                requested,
            } => DetailFields::OverLimit {
                max_seats_per_customer: *limit,
                seats_in_use: *in_use,
                requested: *requested,
            },
            _ => DetailFields::None {},
        }
    }

    /// The cause to log for errors whose message hides it.
    pub fn cause(&self) -> Option<&str> {
        match self {
            Self::Unavailable(cause) | Self::Internal(cause) => Some(cause),
            _ => None,
        }
    }
}

impl<E: std::error::Error> From<StoreError<E>> for CommandError {
    fn from(e: StoreError<E>) -> Self {
        match e {
            StoreError::Rejected(e) => Self::Internal(format!("unmapped refusal: {e}")),
            StoreError::Contention(_) => Self::Contention,
            StoreError::Unavailable(e) => Self::Unavailable(e),
            StoreError::Corrupt(e) => Self::Internal(e),
            StoreError::Busy => Self::Busy,
        }
    }
}

impl From<LoadError> for CommandError {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Unavailable(e) => Self::Unavailable(e.to_string()),
            e @ LoadError::Corrupt(..) => Self::Internal(e.to_string()),
        }
    }
}

impl From<domain::LayoutError> for CommandError {
    fn from(e: domain::LayoutError) -> Self {
        match e {
            domain::LayoutError::UnknownSeats(bad) => Self::UnknownSeats(bad),
            domain::LayoutError::Invalid(msg) => Self::Invalid(vec![msg]),
        }
    }
}

impl From<sqlx::Error> for CommandError {
    fn from(e: sqlx::Error) -> Self {
        Self::Unavailable(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_keeps_its_code_and_kind() {
        let cases = [
            (CommandError::NoSeats, "no_seats", ErrorKind::Invalid),
            (
                CommandError::Unauthenticated("no token".into()),
                "unauthenticated",
                ErrorKind::Unauthenticated,
            ),
            (
                CommandError::Forbidden("organizers only".into()),
                "forbidden",
                ErrorKind::Forbidden,
            ),
            (
                CommandError::NotHoldOwner(HoldId(uuid::Uuid::nil())),
                "not_hold_owner",
                ErrorKind::Forbidden,
            ),
            (
                CommandError::IdempotencyInFlight,
                "idempotency_request_in_flight",
                ErrorKind::Conflict,
            ),
            (
                CommandError::Contention,
                "contention",
                ErrorKind::Unavailable,
            ),
            (CommandError::Busy, "busy", ErrorKind::Busy),
            (
                CommandError::NotEnoughSeats {
                    requested: 2,
                    free: 0,
                    together: true,
                },
                "sold_out",
                ErrorKind::Conflict,
            ),
            (
                CommandError::NotEnoughSeats {
                    requested: 2,
                    free: 3,
                    together: true,
                },
                "not_enough_seats",
                ErrorKind::Conflict,
            ),
        ];
        for (error, code, kind) in cases {
            assert_eq!(error.code(), code);
            assert_eq!(error.kind(), kind);
        }
    }

    #[test]
    fn limits_are_given_as_fields_and_causes_are_not_shown() {
        let e = CommandError::CustomerLimitExceeded {
            limit: 4,
            in_use: 3,
            requested: 2,
        };
        let details = e.details();
        assert_eq!(details["max_seats_per_customer"], 4);
        assert_eq!(details["seats_in_use"], 3);
        assert_eq!(details["requested"], 2);
        let hidden = CommandError::Internal("SELECT secret".into());
        assert_eq!(hidden.to_string(), "internal error");
        assert_eq!(hidden.cause(), Some("SELECT secret"));
        assert_eq!(CommandError::Contention.retry_after_seconds(), Some(1));
        assert_eq!(CommandError::Busy.kind().status(), 429);
        assert_eq!(CommandError::Busy.retry_after_seconds(), Some(1));
    }
}
