//! GraphQL errors. Every error carries `extensions.code`, the same stable code REST puts in its
//! problem+json (`seats_unavailable`, `hold_expired`, ...), plus the HTTP status REST would have
//! used and the same extra fields (for example the unavailable `seats`).

use std::sync::Arc;

use async_graphql::{Error, ErrorExtensions};
use command_api::http::error::ApiError;
use command_api::CommandError;
use projections::ReadError;

/// The REST error, as a GraphQL error.
pub fn from_api(e: ApiError) -> Error {
    let ApiError {
        status,
        code,
        detail,
        extensions,
        retry_after_seconds,
    } = e;
    Error::new(detail).extend_with(|_, ext| {
        ext.set("code", code);
        ext.set("status", status.as_u16());
        if let Some(s) = retry_after_seconds {
            ext.set("retryAfterSeconds", s);
        }
        for (k, v) in extensions {
            if let Ok(v) = async_graphql::Value::from_json(v) {
                ext.set(k, v);
            }
        }
    })
}

pub fn from_command(e: CommandError) -> Error {
    from_api(ApiError::from(e))
}

pub fn coded(code: &'static str, message: impl Into<String>) -> Error {
    Error::new(message.into()).extend_with(|_, ext| ext.set("code", code))
}

pub fn not_found(code: &'static str, message: impl Into<String>) -> Error {
    coded(code, message)
}

pub fn read_failed(e: Arc<ReadError>) -> Error {
    tracing::error!(error = %e, "read model unavailable");
    coded(
        "read_unavailable",
        "the read models are unavailable; try again shortly",
    )
}
