//! Reading SeatGrid's event store in one global order, for projections.
//!
//! See [`event_log`] for the ordering guarantee. Projector runners, read models and the ClickHouse
//! stream build on this reader.

pub mod event_log;

pub use event_log::{EventLog, EventLogError, GlobalPosition, RecordedEvent};
