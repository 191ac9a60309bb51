//! Request extractors whose failures are problem+json: JSON bodies, ids in paths and the request
//! context. The caller is [`super::auth::Authenticated`].

use axum::extract::{FromRequest, FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::StatusCode;
use booking::RequestContext;

use super::error::ApiError;
use super::headers::REQUEST_ID_HEADER;
use super::idempotency::IdempotencySeed;

/// A JSON body; syntax errors are 400, wrong shapes or types 422, other media types 415.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// An id in the path; one that does not parse names nothing, so it is a 404.
pub struct PathId<T>(pub T);

pub trait NotFoundCode {
    const CODE: &'static str;
}
impl NotFoundCode for domain::EventId {
    const CODE: &'static str = "event_not_found";
}
impl NotFoundCode for domain::HoldId {
    const CODE: &'static str = "hold_not_found";
}
impl NotFoundCode for domain::OrderId {
    const CODE: &'static str = "order_not_found";
}

impl<S, T> FromRequestParts<S> for PathId<T>
where
    S: Send + Sync,
    T: std::str::FromStr + NotFoundCode,
    T::Err: std::fmt::Display,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::from_status(StatusCode::NOT_FOUND, e.body_text()))?;
        raw.parse()
            .map(PathId)
            .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, T::CODE, format!("not found: {e}")))
    }
}

/// The request's correlation id (the `X-Request-Id` set by the server or sent by the client) and
/// the idempotency seed the idempotency layer attached, if any.
pub struct Context(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Context {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let text = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Context(RequestContext {
            correlation_id: text(REQUEST_ID_HEADER).unwrap_or_default(),
            id_seed: parts
                .extensions
                .get::<IdempotencySeed>()
                .map(|seed| seed.0.clone()),
        }))
    }
}
