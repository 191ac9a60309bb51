//! Who is calling: the `Authorization: Bearer <token>` header, verified by the core's
//! [`booking::Authenticator`] once per request.
//!
//! Policy: [`identify`] runs in front of every route (REST and GraphQL alike) and leaves the
//! request's [`Identity`] in its extensions; the rate limiter, the idempotency layer, the REST
//! handlers and the GraphQL handler all read that one answer. Routes that act for someone take
//! [`Authenticated`] (401 without a valid token); what the caller may then do is the core's
//! decision ([`booking::identity`]). Public reads (events, seat maps, health, the OpenAPI document)
//! take no token.

use axum::extract::{FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use booking::{Authenticator, Caller, Identity};

use super::error::ApiError;
use super::AppState;

fn identify_headers(auth: &Authenticator, headers: &HeaderMap) -> Identity {
    auth.identify(headers.get(AUTHORIZATION).map(|v| v.as_bytes()))
}

/// Verifies the request's token, once, and leaves its [`Identity`] in the request's extensions
/// (a `map_request` in front of the router: no boxed future per request).
pub fn identify(auth: &Authenticator, mut request: Request) -> Request {
    let identity = identify_headers(auth, request.headers());
    request.extensions_mut().insert(identity);
    request
}

/// The request's identity: the one [`identify`] left, or (a router served without it) verified now.
pub fn identity_of(parts: &Parts, auth: &Authenticator) -> Identity {
    parts
        .extensions
        .get::<Identity>()
        .cloned()
        .unwrap_or_else(|| identify_headers(auth, &parts.headers))
}

/// The verified caller of a request.
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Self(identity_of(parts, &state.auth).caller()?.clone()))
    }
}
