//! Who is calling: the `Authorization: Bearer <token>` header, verified by the core's
//! [`booking::Authenticator`] once per request.
//!
//! Policy: routes that act for someone take [`Authenticated`] (401 without a valid token); what
//! the caller may then do is the core's decision ([`booking::identity`]). Public reads (events,
//! seat maps, health, the OpenAPI document) take no token. The idempotency layer verifies first
//! and leaves the caller in the request's extensions, so it is not verified twice.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use booking::Caller;

use super::error::ApiError;
use super::AppState;

/// The verified caller of a request.
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(Self(caller.clone()));
        }
        let header = parts.headers.get(AUTHORIZATION).map(|v| v.as_bytes());
        let caller = state.auth.require(header)?;
        parts.extensions.insert(caller.clone());
        Ok(Self(caller))
    }
}
