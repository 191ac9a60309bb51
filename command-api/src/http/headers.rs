//! The request headers the REST API reads, named once.

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Set on a response replayed from an idempotency key's stored outcome.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
