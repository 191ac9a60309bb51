//! The one HTTP error type. Every error the API sends is `application/problem+json` (RFC 9457)
//! with a stable `code` (also in `type`, as `urn:seatgrid:problem:<code>`).
//!
//! Policy: bad input is a 4xx that says what to fix; contention and an unavailable database are
//! 503 with `Retry-After`; anything else is a 500 whose details go to the log, never to the client
//! (no SQL, no internals).

use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::service::CommandError;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub extensions: Map<String, Value>,
    pub retry_after_seconds: Option<u32>,
}

/// The body of every error response (for the OpenAPI document).
#[derive(Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(example = "urn:seatgrid:problem:seats_unavailable")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code; the same as the end of `type`.
    #[schema(example = "seats_unavailable")]
    pub code: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            extensions: Map::new(),
            retry_after_seconds: None,
        }
    }

    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.extensions.insert(
            key.to_owned(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }

    fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }

    /// A generic problem for a bare status (unknown route, wrong method, framework rejections).
    pub fn from_status(status: StatusCode, detail: impl Into<String>) -> Self {
        let code = match status {
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::REQUEST_TIMEOUT => "request_timeout",
            s if s.is_server_error() => "internal_error",
            _ => "bad_request",
        };
        Self::new(status, code, detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert(
            "type".into(),
            format!("urn:seatgrid:problem:{}", self.code).into(),
        );
        body.insert(
            "title".into(),
            self.status.canonical_reason().unwrap_or("Error").into(),
        );
        body.insert("status".into(), self.status.as_u16().into());
        body.insert("detail".into(), self.detail.into());
        body.insert("code".into(), self.code.into());
        body.extend(self.extensions);
        let mut response = (self.status, Value::Object(body).to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        use StatusCode as S;
        let detail = e.to_string();
        let code = e.code();
        match e {
            CommandError::Invalid(problems) => {
                Self::new(S::UNPROCESSABLE_ENTITY, code, detail).with("errors", problems)
            }
            CommandError::UnknownSeats(seats) => {
                Self::new(S::UNPROCESSABLE_ENTITY, code, detail).with("seats", seats)
            }
            CommandError::DuplicateSeats(seats) => {
                Self::new(S::UNPROCESSABLE_ENTITY, code, detail).with("seats", seats)
            }
            CommandError::NoSeats => Self::new(S::UNPROCESSABLE_ENTITY, code, detail),
            CommandError::TooManySeats { max, requested } => {
                Self::new(S::UNPROCESSABLE_ENTITY, code, detail)
                    .with("max_seats_per_customer", max)
                    .with("requested", requested)
            }
            CommandError::CustomerLimitExceeded {
                limit,
                in_use,
                requested,
            } => Self::new(S::UNPROCESSABLE_ENTITY, code, detail)
                .with("max_seats_per_customer", limit)
                .with("seats_in_use", in_use)
                .with("requested", requested),
            CommandError::EventNotFound(_) => Self::new(S::NOT_FOUND, code, detail),
            CommandError::HoldNotFound(_) => Self::new(S::NOT_FOUND, code, detail),
            CommandError::SeatsUnavailable(seats) => {
                Self::new(S::CONFLICT, code, detail).with("seats", seats)
            }
            CommandError::NotHoldOwner(_) => Self::new(S::FORBIDDEN, code, detail),
            CommandError::HoldExpired(_) => Self::new(S::CONFLICT, code, detail),
            CommandError::HoldReleased(_) => Self::new(S::CONFLICT, code, detail),
            CommandError::HoldBooked(_) => Self::new(S::CONFLICT, code, detail),
            CommandError::HoldFailed(_) => Self::new(S::CONFLICT, code, detail),
            CommandError::Contention => {
                Self::new(S::SERVICE_UNAVAILABLE, code, detail).retry_after(1)
            }
            CommandError::Unavailable(cause) => {
                tracing::error!(%cause, "event store unavailable");
                Self::new(S::SERVICE_UNAVAILABLE, code, detail).retry_after(5)
            }
            CommandError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                Self::new(S::INTERNAL_SERVER_ERROR, code, detail)
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        use StatusCode as S;
        match rejection {
            JsonRejection::JsonDataError(e) => {
                Self::new(S::UNPROCESSABLE_ENTITY, "invalid_body", e.body_text())
            }
            JsonRejection::JsonSyntaxError(e) => {
                Self::new(S::BAD_REQUEST, "malformed_json", e.body_text())
            }
            JsonRejection::MissingJsonContentType(e) => Self::new(
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                e.body_text(),
            ),
            other => Self::from_status(other.status(), other.body_text()),
        }
    }
}
