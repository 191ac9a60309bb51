//! SeatGrid's read side: from the event store to what readers see.
//!
//! - [`event_log`]: the event store in one gap-safe global order (no event is ever skipped).
//! - [`runner`]: the projector runner: checkpoints, LISTEN/NOTIFY wake-ups, at-least-once delivery.
//! - [`records`]: the read models' records (holds, seat maps, events, the changes of a batch).
//! - [`read_models`]: the booking read models (events, seat maps, holds) in Postgres, and the
//!   projection that maintains them.
//! - [`seat_maps`]: the seat map read model, kept in chunks of 1,000 seats.
//! - [`orders`]: the orders read model.
//! - [`cache`]: their Redis cache and the pub/sub channels that carry each change.
//! - [`reader`]: reading them, cache first; [`joined`]: concurrent reads of one key sharing one.
//! - [`backoff`]: how long-running read-side tasks wait before reconnecting.
//! - [`tracing_context`]: trace context from command to projection, through event metadata.

pub mod backoff;
pub mod cache;
pub mod event_log;
pub mod joined;
mod lookup;
pub mod orders;
pub mod read_models;
pub mod reader;
pub mod records;
pub mod redis_conn;
pub mod runner;
pub mod seat_maps;
pub mod tracing_context;

pub use cache::Cache;
pub use event_log::{EventLog, EventLogError, GlobalPosition, ReadBatch, RecordedEvent};
pub use orders::OrderRecord;
pub use read_models::{ReadModelProjection, READ_MODELS};
pub use reader::{ReadError, ReadModels};
pub use records::{EventRecord, HoldRecord, ReadModelChanges, SeatMap, SeatUpdate};
pub use runner::{
    reset, Checkpoints, Projection, ProjectionError, ProjectionLag, ProjectorRunner, RunnerConfig,
};
