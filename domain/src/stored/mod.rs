//! The one vocabulary of what is stored in the event store: aggregate type names, event type names,
//! the payload fields other layers read in SQL, and the typed decoding of a stored event.
//!
//! Policy:
//! - Aggregate type names are the aggregates' own `TYPE`; event type names are what the events'
//!   `event_type()` writes. Both are spelled here once ([`aggregate_type`], [`event_type`]) and the
//!   aggregates return these constants, so a reader and the writer can never disagree.
//! - A stored payload is decoded in one place, [`StoredEvent::decode`], by its aggregate type. An
//!   aggregate type this code does not know is not an error (it may belong to a newer release):
//!   the decoder answers `None` and the caller skips it. A known type whose payload does not
//!   decode is corruption, reported as [`DecodeError`].
//! - SQL that must read inside a payload builds the path with [`payload_text_sql`] from the
//!   constants here; no crate spells an event type or a payload field on its own.

pub mod names;

use crate::customer_allowance::{CustomerAllowanceEvent, ReturnReason};
use crate::hold::HoldEvent;
use crate::order::{OrderEvent, OrderPlaced};
use crate::seat_block::{HoldChange, SeatBlockEvent};
use crate::ticketed_event::{EventDefinition, TicketedEventEvent};

pub use names::{aggregate_type, event_type, field, payload_text_sql};

/// A stored payload that does not match the code's events.
#[derive(Debug, thiserror::Error)]
#[error("stored {aggregate_type} event does not decode: {reason}")]
pub struct DecodeError {
    pub aggregate_type: String,
    pub reason: String,
}

/// Any stored domain event, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredEvent {
    Ticketed(TicketedEventEvent),
    Block(SeatBlockEvent),
    Allowance(CustomerAllowanceEvent),
    Order(OrderEvent),
}

impl StoredEvent {
    /// Decodes a payload (its JSON text, as stored) by its aggregate type; `None` for an aggregate
    /// type this code does not know (see the module policy). Straight from the text into the typed
    /// event: no `serde_json::Value` tree in between (readers of the whole log decode every event).
    pub fn decode(aggregate_type: &str, payload: &str) -> Result<Option<Self>, DecodeError> {
        let corrupt = |e: serde_json::Error| DecodeError {
            aggregate_type: aggregate_type.to_owned(),
            reason: e.to_string(),
        };
        Ok(Some(match aggregate_type {
            aggregate_type::TICKETED_EVENT => {
                Self::Ticketed(serde_json::from_str(payload).map_err(corrupt)?)
            }
            aggregate_type::SEAT_BLOCK => {
                Self::Block(serde_json::from_str(payload).map_err(corrupt)?)
            }
            aggregate_type::CUSTOMER_ALLOWANCE => {
                Self::Allowance(serde_json::from_str(payload).map_err(corrupt)?)
            }
            aggregate_type::ORDER => Self::Order(serde_json::from_str(payload).map_err(corrupt)?),
            _ => return Ok(None),
        }))
    }

    /// The event as the hold lifecycle reads it, if it is about a hold.
    pub fn hold_event(&self) -> Option<HoldEvent<'_>> {
        match self {
            Self::Ticketed(_) | Self::Order(_) => None,
            Self::Block(e) => Some(HoldEvent::Block(e)),
            Self::Allowance(e) => Some(HoldEvent::Allowance(e)),
        }
    }

    /// The hold the event is about, if it is about one.
    pub fn hold_change(&self) -> Option<&HoldChange> {
        match self {
            Self::Ticketed(_) | Self::Order(_) => None,
            Self::Block(e) => Some(e.change()),
            Self::Allowance(e) => Some(e.change()),
        }
    }

    /// The ticketed event this creates, if it creates one.
    pub fn created_event(&self) -> Option<&EventDefinition> {
        match self {
            Self::Ticketed(TicketedEventEvent::EventCreated(d)) => Some(d),
            _ => None,
        }
    }

    /// The order this places, if it places one.
    pub fn order_placed(&self) -> Option<&OrderPlaced> {
        match self {
            Self::Order(OrderEvent::OrderPlaced(p)) => Some(p),
            _ => None,
        }
    }

    /// Why an allowance was given back, if this gives one back.
    pub fn return_reason(&self) -> Option<ReturnReason> {
        match self {
            Self::Allowance(CustomerAllowanceEvent::AllowanceReturned { reason, .. }) => {
                Some(*reason)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use cqrs_es::{Aggregate, DomainEvent};

    use super::*;
    use crate::{CustomerAllowance, CustomerId, EventId, HoldId, SeatBlock, SeatId, TicketedEvent};

    fn change() -> HoldChange {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        HoldChange {
            event_id: EventId(uuid::Uuid::from_u128(1)),
            hold_id: HoldId(uuid::Uuid::from_u128(2)),
            customer_id: CustomerId::parse("alice").unwrap(),
            seats: vec![SeatId(3)],
            expires_at: at + chrono::Duration::minutes(10),
            at,
        }
    }

    #[test]
    fn aggregate_type_names_are_the_aggregates_own() {
        assert_eq!(aggregate_type::TICKETED_EVENT, TicketedEvent::TYPE);
        assert_eq!(aggregate_type::SEAT_BLOCK, SeatBlock::TYPE);
        assert_eq!(aggregate_type::CUSTOMER_ALLOWANCE, CustomerAllowance::TYPE);
        assert_eq!(aggregate_type::ORDER, crate::Order::TYPE);
    }

    #[test]
    fn an_order_decodes_by_its_aggregate_type_and_is_no_hold_event() {
        use crate::order::{OrderEvent, OrderPlaced};
        let c = change();
        let placed = OrderEvent::OrderPlaced(OrderPlaced {
            order_id: crate::OrderId(uuid::Uuid::from_u128(9)),
            event_id: c.event_id,
            customer_id: c.customer_id.clone(),
            holds: vec![c.hold_id],
            seats: c.seats.clone(),
            amount_cents: 4_500,
            currency: "EUR".into(),
            payment_due: c.expires_at,
            at: c.at,
        });
        let payload = serde_json::to_string(&placed).unwrap();
        let decoded = StoredEvent::decode(aggregate_type::ORDER, &payload)
            .unwrap()
            .unwrap();
        assert_eq!(decoded, StoredEvent::Order(placed));
        assert!(decoded.hold_event().is_none() && decoded.hold_change().is_none());
        assert_eq!(decoded.order_placed().unwrap().amount_cents, 4_500);
    }

    #[test]
    fn every_order_event_writes_the_type_name_spelled_here_and_names_its_payload_by_it() {
        use crate::order::{OrderEvent, RefundReason};
        let at = change().at;
        let id = || "evt_1".to_owned();
        let cases = [
            (
                OrderEvent::PaymentSucceeded {
                    provider_event_id: id(),
                    payment_intent: Some("pi_1".into()),
                    at,
                },
                event_type::PAYMENT_SUCCEEDED,
            ),
            (
                OrderEvent::PaymentRequested {
                    payment_intent: "pi_1".into(),
                    payment_url: None,
                    at,
                },
                event_type::PAYMENT_REQUESTED,
            ),
            (
                OrderEvent::PaymentFailed {
                    provider_event_id: id(),
                    reason: "declined".into(),
                    at,
                },
                event_type::PAYMENT_FAILED,
            ),
            (
                OrderEvent::OrderConfirmed { at },
                event_type::ORDER_CONFIRMED,
            ),
            (OrderEvent::OrderExpired { at }, event_type::ORDER_EXPIRED),
            (
                OrderEvent::OrderCancelled { at },
                event_type::ORDER_CANCELLED,
            ),
            (
                OrderEvent::RefundRequested {
                    reason: RefundReason::SeatsLost,
                    payment_intent: None,
                    at,
                },
                event_type::REFUND_REQUESTED,
            ),
            (
                OrderEvent::HoldReplaced {
                    from: change().hold_id,
                    to: change().hold_id,
                    at,
                },
                event_type::HOLD_REPLACED,
            ),
            (
                OrderEvent::OrderRefunded {
                    provider_event_id: id(),
                    at,
                },
                event_type::ORDER_REFUNDED,
            ),
        ];
        for (event, expected) in cases {
            let (written, payload) = pair(&event);
            assert_eq!(written, expected);
            assert!(
                payload.get(expected).is_some(),
                "{payload} is tagged {expected}"
            );
        }
    }

    #[test]
    fn every_event_writes_the_type_name_spelled_here_and_names_its_payload_by_it() {
        let c = change();
        let returned = CustomerAllowanceEvent::AllowanceReturned {
            change: c.clone(),
            reason: ReturnReason::Released,
        };
        let cases = [
            (
                pair(&SeatBlockEvent::SeatHeld(c.clone())),
                event_type::SEAT_HELD,
            ),
            (
                pair(&SeatBlockEvent::SeatBooked(c.clone())),
                event_type::SEAT_BOOKED,
            ),
            (
                pair(&SeatBlockEvent::SeatReleased(c.clone())),
                event_type::SEAT_RELEASED,
            ),
            (
                pair(&SeatBlockEvent::HoldExpired(c.clone())),
                event_type::HOLD_EXPIRED,
            ),
            (
                pair(&SeatBlockEvent::BookingUndone(c.clone())),
                event_type::BOOKING_UNDONE,
            ),
            (
                pair(&SeatBlockEvent::HoldExtended {
                    change: c.clone(),
                    order_id: crate::OrderId(uuid::Uuid::from_u128(9)),
                }),
                event_type::HOLD_EXTENDED,
            ),
            (
                pair(&CustomerAllowanceEvent::AllowanceExtended(c.clone())),
                event_type::ALLOWANCE_EXTENDED,
            ),
            (
                pair(&CustomerAllowanceEvent::AllowanceReserved(c.clone())),
                event_type::ALLOWANCE_RESERVED,
            ),
            (
                pair(&CustomerAllowanceEvent::AllowanceCommitted(c.clone())),
                event_type::ALLOWANCE_COMMITTED,
            ),
            (pair(&returned), event_type::ALLOWANCE_RETURNED),
        ];
        for ((written, payload), expected) in cases {
            assert_eq!(written, expected);
            assert!(
                payload.get(expected).is_some(),
                "{payload} is tagged {expected}"
            );
        }
    }

    fn pair<E: DomainEvent>(e: &E) -> (String, serde_json::Value) {
        (e.event_type(), serde_json::to_value(e).unwrap())
    }

    #[test]
    fn the_expiry_path_reads_the_field_a_seat_held_event_stores() {
        let payload = serde_json::to_value(SeatBlockEvent::SeatHeld(change())).unwrap();
        assert!(payload[event_type::SEAT_HELD][field::EXPIRES_AT].is_string());
        assert_eq!(
            payload_text_sql("held", event_type::SEAT_HELD, field::EXPIRES_AT),
            "(held.payload -> 'SeatHeld' ->> 'expires_at')"
        );
    }

    #[test]
    fn decoding_goes_by_aggregate_type() {
        let payload = serde_json::to_string(&SeatBlockEvent::SeatBooked(change())).unwrap();
        let decoded = StoredEvent::decode(aggregate_type::SEAT_BLOCK, &payload)
            .unwrap()
            .unwrap();
        assert_eq!(
            decoded,
            StoredEvent::Block(SeatBlockEvent::SeatBooked(change()))
        );
        assert_eq!(decoded.hold_change(), Some(&change()));
    }

    #[test]
    fn an_unknown_aggregate_type_is_skipped_and_a_bad_payload_is_corrupt() {
        assert!(StoredEvent::decode("GiftCard", r#"{"GiftCardIssued": {}}"#)
            .unwrap()
            .is_none());
        let bad = StoredEvent::decode(aggregate_type::SEAT_BLOCK, r#"{"SeatHeld": 1}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn a_return_says_why() {
        let returned = StoredEvent::Allowance(CustomerAllowanceEvent::AllowanceReturned {
            change: change(),
            reason: ReturnReason::HoldFailed,
        });
        assert_eq!(returned.return_reason(), Some(ReturnReason::HoldFailed));
        for reason in [
            ReturnReason::Released,
            ReturnReason::HoldFailed,
            ReturnReason::BookingFailed,
        ] {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
    }
}
