//! The order's messages: its statuses, refund reasons, events and commands, and the one
//! lifecycle every reader follows ([`OrderEvent::next_status`]). The rules are `crate::order`'s.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::ids::{CustomerId, EventId, HoldId, OrderId, SeatId};
use crate::stored::names::event_type;
use crate::EVENT_SCHEMA_VERSION;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    Confirmed,
    PaymentFailed,
    Expired,
    Cancelled,
    RefundPending,
    Refunded,
}

impl OrderStatus {
    pub const ALL: [Self; 8] = [
        Self::PendingPayment,
        Self::Paid,
        Self::Confirmed,
        Self::PaymentFailed,
        Self::Expired,
        Self::Cancelled,
        Self::RefundPending,
        Self::Refunded,
    ];

    /// No further change will happen (a late payment success still can: see the policy).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Confirmed | Self::Refunded)
    }

    /// This recorded status as of `now`, for an order whose payment is due at `payment_due`: one
    /// still waiting for its payment then has expired, whether or not `OrderExpired` was recorded
    /// (lazy expiry, as for holds).
    pub fn at(self, payment_due: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        match self {
            Self::PendingPayment if now >= payment_due => Self::Expired,
            other => other,
        }
    }
}

/// Why money is given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    /// The payment arrived after the holds expired and their seats went to someone else.
    SeatsLost,
    /// The payment arrived after the customer had cancelled.
    CancelledBeforePayment,
    /// The customer cancelled a confirmed order.
    CustomerCancelled,
}

/// What an order is for, as placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub order_id: OrderId,
    pub event_id: EventId,
    pub customer_id: CustomerId,
    pub holds: Vec<HoldId>,
    pub seats: Vec<SeatId>,
    pub amount_cents: u64,
    pub currency: String,
    pub payment_due: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderEvent {
    OrderPlaced(OrderPlaced),
    /// The provider took the payment request: where the buyer pays, and the provider's id.
    PaymentRequested {
        payment_intent: String,
        #[serde(default)]
        payment_url: Option<String>,
        at: DateTime<Utc>,
    },
    PaymentSucceeded {
        provider_event_id: String,
        /// The provider's payment (its id, for a refund); absent in events of older releases.
        #[serde(default)]
        payment_intent: Option<String>,
        at: DateTime<Utc>,
    },
    PaymentFailed {
        provider_event_id: String,
        reason: String,
        at: DateTime<Utc>,
    },
    OrderConfirmed {
        at: DateTime<Utc>,
    },
    OrderExpired {
        at: DateTime<Utc>,
    },
    OrderCancelled {
        at: DateTime<Utc>,
    },
    RefundRequested {
        reason: RefundReason,
        /// The payment to give back (the refund request's outbox row carries it).
        #[serde(default)]
        payment_intent: Option<String>,
        at: DateTime<Utc>,
    },
    /// A hold that expired before the money arrived was placed again on the same seats (they
    /// were still free) and replaces it in the order.
    HoldReplaced {
        from: HoldId,
        to: HoldId,
        at: DateTime<Utc>,
    },
    OrderRefunded {
        provider_event_id: String,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        match self {
            Self::OrderPlaced(_) => event_type::ORDER_PLACED,
            Self::PaymentRequested { .. } => event_type::PAYMENT_REQUESTED,
            Self::PaymentSucceeded { .. } => event_type::PAYMENT_SUCCEEDED,
            Self::PaymentFailed { .. } => event_type::PAYMENT_FAILED,
            Self::OrderConfirmed { .. } => event_type::ORDER_CONFIRMED,
            Self::OrderExpired { .. } => event_type::ORDER_EXPIRED,
            Self::OrderCancelled { .. } => event_type::ORDER_CANCELLED,
            Self::RefundRequested { .. } => event_type::REFUND_REQUESTED,
            Self::OrderRefunded { .. } => event_type::ORDER_REFUNDED,
            Self::HoldReplaced { .. } => event_type::HOLD_REPLACED,
        }
        .into()
    }
    fn event_version(&self) -> String {
        EVENT_SCHEMA_VERSION.into()
    }
}

#[derive(Debug, Clone)]
pub enum OrderCommand {
    Place(OrderPlaced),
    /// The relay's command once the provider took the request (recorded once; copies are no-ops).
    RecordPaymentRequested {
        payment_intent: String,
        payment_url: Option<String>,
        now: DateTime<Utc>,
    },
    RecordPaymentSucceeded {
        provider_event_id: String,
        payment_intent: Option<String>,
        now: DateTime<Utc>,
    },
    RecordPaymentFailed {
        provider_event_id: String,
        reason: String,
        now: DateTime<Utc>,
    },
    /// Every seat of the order is booked for its customer.
    Confirm {
        now: DateTime<Utc>,
    },
    /// The sweeper's command: nothing arrived by `payment_due`.
    Expire {
        now: DateTime<Utc>,
    },
    Cancel {
        customer_id: CustomerId,
        now: DateTime<Utc>,
    },
    /// The payment cannot become seats (they went to someone else).
    RefundSeatsLost {
        now: DateTime<Utc>,
    },
    RecordRefunded {
        provider_event_id: String,
        now: DateTime<Utc>,
    },
    /// The order process placed `to` on the seats of the expired hold `from` (paid orders only).
    ReplaceHold {
        from: HoldId,
        to: HoldId,
        now: DateTime<Utc>,
    },
}

impl OrderEvent {
    /// The order's status after this event, from `status` before it: the one lifecycle, for the
    /// aggregate and every reader that follows orders (read models, analytics).
    pub fn next_status(&self, status: Option<OrderStatus>) -> Option<OrderStatus> {
        use OrderStatus::*;
        match self {
            Self::OrderPlaced(_) => Some(PendingPayment),
            Self::PaymentSucceeded { .. } => match status {
                Some(PendingPayment | Expired | PaymentFailed) => Some(Paid),
                other => other,
            },
            Self::PaymentFailed { .. } => Some(PaymentFailed),
            Self::OrderConfirmed { .. } => Some(Confirmed),
            Self::OrderExpired { .. } => Some(Expired),
            Self::OrderCancelled { .. } => Some(Cancelled),
            Self::RefundRequested { .. } => Some(RefundPending),
            Self::OrderRefunded { .. } => Some(Refunded),
            Self::HoldReplaced { .. } | Self::PaymentRequested { .. } => status,
        }
    }

    /// When it happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::OrderPlaced(p) => p.at,
            Self::PaymentSucceeded { at, .. }
            | Self::PaymentFailed { at, .. }
            | Self::OrderConfirmed { at }
            | Self::OrderExpired { at }
            | Self::OrderCancelled { at }
            | Self::RefundRequested { at, .. }
            | Self::OrderRefunded { at, .. }
            | Self::HoldReplaced { at, .. }
            | Self::PaymentRequested { at, .. } => *at,
        }
    }
}

impl OrderStatus {
    /// The name clients and the read models use (`pending_payment`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingPayment => "pending_payment",
            Self::Paid => "paid",
            Self::Confirmed => "confirmed",
            Self::PaymentFailed => "payment_failed",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::RefundPending => "refund_pending",
            Self::Refunded => "refunded",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl RefundReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SeatsLost => "seats_lost",
            Self::CancelledBeforePayment => "cancelled_before_payment",
            Self::CustomerCancelled => "customer_cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::SeatsLost,
            Self::CancelledBeforePayment,
            Self::CustomerCancelled,
        ]
        .into_iter()
        .find(|r| r.as_str() == raw)
    }
}
