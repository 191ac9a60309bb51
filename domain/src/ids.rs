//! Identifiers. Each one is a newtype that can only hold a valid value; parsing is the only way in
//! from the outside world.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An identifier from outside did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidId(pub String);

/// Identifies a ticketed event (the show), not a domain event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub Uuid);

/// Identifies one hold: a set of seats reserved for one customer until an expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HoldId(pub Uuid);

/// Identifies one order: a customer's purchase of the seats of some of their holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(pub Uuid);

macro_rules! uuid_id {
    ($name:ident, $what:literal) => {
        impl $name {
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| InvalidId(format!("{} must be a UUID, got {s:?}", $what)))
            }
        }
    };
}
uuid_id!(EventId, "an event id");
uuid_id!(HoldId, "a hold id");
uuid_id!(OrderId, "an order id");

/// Who holds and books seats: the subject of the caller's verified token (see `booking::identity`),
/// 1 to 64 characters from `A-Z a-z 0-9 . _ @ : | -` (identity providers' subjects fit).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CustomerId(String);

impl CustomerId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || "._@:|-".contains(c);
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !raw.chars().all(ok_char) {
            return Err(InvalidId(format!(
                "a customer id is 1 to {} characters from A-Z a-z 0-9 . _ @ : | -, got {raw:?}",
                Self::MAX_LEN
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CustomerId {
    type Error = InvalidId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CustomerId> for String {
    fn from(value: CustomerId) -> Self {
        value.0
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A seat's stable id within its ticketed event: its position in layout order, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SeatId(pub u32);

impl fmt::Display for SeatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One seat block of one ticketed event; `index` counts blocks in layout order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeatBlockId {
    pub event_id: EventId,
    pub index: u32,
}

impl SeatBlockId {
    /// The aggregate id under which the block's domain events are stored.
    pub fn aggregate_id(&self) -> String {
        format!("{}.{}", self.event_id, self.index)
    }
}

impl FromStr for SeatBlockId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            InvalidId(format!(
                "a seat block id is <event uuid>.<index>, got {s:?}"
            ))
        };
        let (event, index) = s.split_once('.').ok_or_else(bad)?;
        Ok(Self {
            event_id: event.parse().map_err(|_| bad())?,
            index: index.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_ids_are_checked() {
        assert!(CustomerId::parse("alice@example.com").is_ok());
        assert!(CustomerId::parse("").is_err());
        assert!(CustomerId::parse("has space").is_err());
        assert!(CustomerId::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn seat_block_ids_round_trip() {
        let id = SeatBlockId {
            event_id: EventId::new_random(),
            index: 42,
        };
        assert_eq!(id.aggregate_id().parse::<SeatBlockId>().unwrap(), id);
        assert!("nonsense".parse::<SeatBlockId>().is_err());
    }
}
