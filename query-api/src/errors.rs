//! GraphQL errors: the one place the core's [`CommandError`] becomes a GraphQL error. Every error
//! carries `extensions.code`, the same stable code REST puts in its problem+json
//! (`seats_unavailable`, `hold_expired`, ...), the HTTP status REST answers it with, and the same
//! extra fields (for example the unavailable `seats`).

use std::sync::Arc;

use async_graphql::{Error, ErrorExtensions};
use booking::CommandError;
use projections::ReadError;

pub fn from_command(e: CommandError) -> Error {
    if let Some(cause) = e.cause() {
        tracing::error!(%cause, code = e.code(), "command failed");
    }
    let (code, kind, retry, details) = (e.code(), e.kind(), e.retry_after_seconds(), e.details());
    Error::new(e.to_string()).extend_with(|_, ext| {
        ext.set("code", code);
        ext.set("status", kind.status());
        if let Some(s) = retry {
            ext.set("retryAfterSeconds", s);
        }
        for (k, v) in details {
            if let Ok(v) = async_graphql::Value::from_json(v) {
                ext.set(k, v);
            }
        }
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_keeps_the_rest_code_status_and_fields() {
        let error = from_command(CommandError::TooManySeats {
            max: 4,
            requested: 6,
        });
        let ext = error.extensions.expect("extensions");
        assert_eq!(
            ext.get("code"),
            Some(&async_graphql::Value::from("too_many_seats"))
        );
        assert_eq!(ext.get("status"), Some(&async_graphql::Value::from(422)));
        assert_eq!(ext.get("requested"), Some(&async_graphql::Value::from(6)));
    }
}
