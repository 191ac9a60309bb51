//! `Idempotency-Key` on POST requests: the REST face of [`booking::idempotency`], whose policy
//! applies (stored for 24 hours; the same key with the same request replays the stored response,
//! marked `Idempotent-Replayed: true`; in flight: 409; another request: 422; after a 5xx the same
//! request runs again with the same id seed, so it lands on what the failed run created).
//!
//! Keys belong to the caller (the token's subject): two callers never share a key's outcome, and a
//! refreshed token still replays. A request without a valid token runs without idempotency (it is
//! refused as unauthenticated anyway). A REST request is the same request when its method, path and
//! body are.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use booking::idempotency::{self, Claim, IdempotencyStore, StoredResponse};
use booking::{CommandError, Identity};

use super::auth::identity_of;
use super::error::ApiError;
use super::headers::{IDEMPOTENCY_HEADER, REPLAYED_HEADER};
use super::AppState;

/// The headers of a response worth replaying.
const KEPT_HEADERS: [HeaderName; 2] = [header::CONTENT_TYPE, header::LOCATION];

/// Identifies one run of an idempotent request (see [`Claim::Run`]); handlers derive new ids from
/// it through the request context.
#[derive(Debug, Clone)]
pub struct IdempotencySeed(pub String);

pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(IDEMPOTENCY_HEADER).cloned() else {
        return next.run(request).await;
    };
    // Unauthenticated requests are refused by their handler (401) before any key matters.
    let (parts, body) = request.into_parts();
    let Identity::Caller(caller) = identity_of(&parts, &state.auth) else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let request = Request::from_parts(parts, body);
    let key = match key
        .to_str()
        .map_err(|_| CommandError::InvalidIdempotencyKey {
            max: idempotency::MAX_KEY_LEN,
        }) {
        Ok(k) => k.to_owned(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    if let Err(e) = idempotency::check_key(&key) {
        return ApiError::from(e).into_response();
    }
    let key = format!("{}\n{key}", caller.customer);
    let (parts, body) = request.into_parts();
    let body = match to_bytes(body, state.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::from_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request bodies are limited to {} bytes",
                    state.max_body_bytes
                ),
            )
            .into_response()
        }
    };
    let fingerprint = fingerprint(&parts.method, parts.uri.path(), &body);
    let store = IdempotencyStore::new(state.pool.clone());
    let seed = match store.claim(&key, &fingerprint).await {
        Ok(Claim::Run { seed }) => seed,
        Ok(Claim::Replay(stored)) => return replay(stored),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut request = Request::from_parts(parts, Body::from(body));
    request.extensions_mut().insert(IdempotencySeed(seed));
    let response = next.run(request).await;
    if response.status().is_server_error() {
        if let Err(e) = store.reopen_eventually(&key).await {
            tracing::error!(error = %e, "could not reopen an idempotency key after a 5xx");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        headers: KEPT_HEADERS
            .iter()
            .filter_map(|name| {
                let value = parts.headers.get(name)?.to_str().ok()?;
                Some((name.as_str().to_owned(), value.to_owned()))
            })
            .collect(),
        body: body.to_vec(),
    };
    match store.remember(&key, &stored).await {
        Ok(()) => Response::from_parts(parts, Body::from(body)),
        Err(e) => {
            // The store went away after the command: the retry runs again with the same seed and
            // answers with what this run did.
            tracing::error!(error = %e, "could not store an idempotent response");
            let _ = store.reopen_eventually(&key).await;
            let mut error = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the request may have been applied; retry with the same Idempotency-Key",
            );
            error.retry_after_seconds = Some(5);
            error.into_response()
        }
    }
}

fn fingerprint(method: &Method, path: &str, body: &[u8]) -> Vec<u8> {
    idempotency::fingerprint(&[method.as_str().as_bytes(), path.as_bytes(), body])
}

fn replay(stored: StoredResponse) -> Response {
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    for (name, value) in stored.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(n, v);
        }
    }
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}
