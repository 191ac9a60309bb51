//! SeatGrid's write side: the booking command service and the REST API in front of it.
//!
//! - [`service`]: where commands are decided and sequenced (the [`service::BookingCommands`]
//!   trait is the seam GraphQL mutations will call).
//! - [`store`]: the Postgres event store, with the bounded conflict retry.
//! - [`http`]: REST endpoints, problem+json errors, idempotency keys, OpenAPI.
//! - [`sweeper`]: records expiries nobody else recorded.
//! - [`startup`]: `Application::build` and `run_until_stopped`.

pub mod http;
pub mod service;
pub mod startup;
pub mod store;
pub mod sweeper;
pub mod views;

pub use service::{BookingCommands, BookingService, CommandError, RequestContext};
pub use startup::{Application, CommandApiConfig, StartupError};
pub use store::RetryPolicy;
