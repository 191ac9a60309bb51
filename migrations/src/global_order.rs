//! The event store's global order, added by migration (postgres-es has none of its own).
//!
//! Policy: every reader that walks the event store across aggregates (the projections, the
//! ClickHouse ingester, the expiry sweeper) orders events by `(transaction_id, position)` and reads
//! only below [`VISIBLE_TO_EVERY_READER`]. `position` is an identity assigned at insert, and
//! identities become visible out of order when transactions commit out of order; below the oldest
//! transaction still running nothing can appear any more, so a place read once stays a safe
//! place to resume from.

/// SQL condition on a row of `events`: its transaction finished before the oldest one still
/// running began. Unqualified, so use it where `events` is the only table in scope.
pub const VISIBLE_TO_EVERY_READER: &str =
    "transaction_id < pg_snapshot_xmin(pg_current_snapshot())";

/// A place in the global order. Ordered by transaction first, then position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GlobalPosition {
    pub transaction_id: u64,
    pub position: i64,
}

impl GlobalPosition {
    /// Before the first event.
    pub const START: Self = Self {
        transaction_id: 0,
        position: 0,
    };

    /// From stored columns: SQL keeps a transaction id as `bigint` (an `xid8` read through
    /// `::text::bigint`), and it is never negative.
    pub fn from_stored(transaction_id: i64, position: i64) -> Self {
        Self {
            transaction_id: transaction_id as u64,
            position,
        }
    }

    /// The transaction id as the `bigint` SQL binds (compared as `$n::bigint::text::xid8`).
    pub fn stored_transaction_id(self) -> i64 {
        self.transaction_id as i64
    }
}
