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

use booking::CommandError;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub extensions: Map<String, Value>,
    /// The core's refusal this answers, whose fields join the body (serialized from it directly).
    pub refusal: Option<CommandError>,
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
            refusal: None,
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

    /// A generic problem for a bare status (unknown route, wrong method, framework rejections).
    pub fn from_status(status: StatusCode, detail: impl Into<String>) -> Self {
        let code = match status {
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::REQUEST_TIMEOUT => "request_timeout",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            s if s.is_server_error() => "internal_error",
            _ => "bad_request",
        };
        Self::new(status, code, detail)
    }
}

/// A problem as sent: the fixed members, then the error's own (written straight to the body, no
/// `serde_json::Value` tree: most answers of a flash sale are refusals).
#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    #[serde(flatten)]
    extensions: &'a Map<String, Value>,
    #[serde(flatten)]
    fields: Option<booking::DetailFields<'a>>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ProblemBody {
            kind: format!("urn:seatgrid:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
            extensions: &self.extensions,
            fields: self.refusal.as_ref().map(CommandError::detail_fields),
        };
        let body = serde_json::to_string(&body).expect("a problem serializes");
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"seatgrid\""),
            );
        }
        response
    }
}

/// The core's refusals as HTTP: the one place a [`CommandError`] becomes a status.
impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        let status =
            StatusCode::from_u16(e.kind().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Some(cause) = e.cause() {
            tracing::error!(%cause, code = e.code(), "command failed");
        }
        let mut error = Self::new(status, e.code(), e.to_string());
        error.retry_after_seconds = e.retry_after_seconds();
        error.refusal = Some(e);
        error
    }
}

/// A payment notification that does not prove it is the provider's, or is too old.
impl From<booking::payments::SignatureError> for ApiError {
    fn from(e: booking::payments::SignatureError) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_signature", e.to_string())
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
