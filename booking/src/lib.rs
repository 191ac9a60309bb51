//! SeatGrid's application core: it carries out the booking commands and the reads that must never
//! be behind, and it knows nothing of HTTP or GraphQL. The REST adapter (`command-api`) and the
//! GraphQL adapter (`query-api`) are siblings over it; each maps [`CommandError`] to its transport
//! in one place.
//!
//! Where things are, by name:
//! - [`service`]: the [`BookingCommands`] trait and [`BookingService`], creating events;
//!   [`place_hold`], [`book_release`], [`reads`], [`expiry`], [`reconcile`]: the service's steps.
//! - [`validation`]: request shapes and checks shared by both adapters; [`error`]: the one error.
//! - [`identity`]: callers, roles and who may do what; [`tokens`]: verifying and minting JWTs.
//! - [`context`]: who asked, and ids derived from idempotency seeds; [`idempotency`]: stored
//!   outcomes of requests with an idempotency key.
//! - [`detached`]: commands that finish even when their caller leaves (what adapters serve).
//! - [`persistence`]: the store's errors, retry policy and version reads, below both ways of
//!   writing: [`store`]: the Postgres event store, with the bounded conflict retry; [`writers`]: one
//!   in-memory writer per seat block and allowance ([`writer_batch`]: one batch's decisions;
//!   `parked`: stopped writers' states; [`linked`]: a hold's two appends in one transaction);
//!   [`group_commit`]: their shared transactions;
//!   [`version_probe`]: the version lookups refusals from memory share; `cold_reads`: blocks no
//!   writer holds, read once per crowd.
//! - [`admission`]: how many holds of one event may be decided at once; [`best_seats`]: holds of
//!   the best available seats;
//! - [`views`]: what the core answers with; [`sweeper`]: records expiries nobody else recorded.

pub mod admission;
pub mod best_seats;
pub mod book_release;
mod cold_reads;
pub mod context;
pub mod detached;
pub mod error;
pub mod expiry;
pub mod group_commit;
pub mod idempotency;
pub mod identity;
pub mod linked;
pub mod orders;
mod parked;
pub mod payments;
pub mod persistence;
mod picker;
pub mod place_hold;
pub mod reads;
pub mod reconcile;
pub mod service;
pub mod settle;
pub mod store;
pub mod sweeper;
pub mod tokens;
pub mod validation;
pub mod version_probe;
pub mod views;
pub mod writer_batch;
pub mod writers;

pub use context::RequestContext;
pub use detached::RunToCompletion;
pub use domain::SeatChoice;
pub use error::{CommandError, DetailFields, ErrorKind};
pub use identity::{Caller, Identity, Role};
pub use service::{BookingCommands, BookingService};
pub use store::{EventStore, RetryPolicy};
pub use tokens::Authenticator;
