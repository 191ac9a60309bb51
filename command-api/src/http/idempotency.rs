//! `Idempotency-Key` on POST requests.
//!
//! Policy (after pretix's, which users of ticketing APIs know):
//! - The first request with a key runs; its response (any status below 500) is stored for 24 hours.
//! - The same key with the same request (method, path, customer header and body) within 24 hours
//!   gets the stored response again, marked `Idempotent-Replayed: true`.
//! - While the first request with a key is still running, any other request with that key gets
//!   409; once it is done, the same key with a different request is refused with 422.
//! - A 5xx is not stored: the key is freed so the client's retry runs again. A request whose server
//!   died mid-way frees its key after [`STALE_AFTER_SECONDS`]; the re-run lands on the same
//!   aggregate ids (derived from the key), so nothing is done twice.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};

use super::error::ApiError;
use super::extract::{CUSTOMER_HEADER, IDEMPOTENCY_HEADER};
use super::AppState;

pub const STALE_AFTER_SECONDS: i32 = 60;
pub const MAX_KEY_LEN: usize = 255;
const REPLAYED_HEADER: &str = "idempotent-replayed";
const KEPT_HEADERS: [HeaderName; 2] = [header::CONTENT_TYPE, header::LOCATION];

/// Identifies one run of an idempotent request: the key plus when it was claimed. Handlers derive
/// new ids from it, so a re-run of the same claim (after a crash) lands on the same ids while a key
/// reused after its 24 hours gets new ones.
#[derive(Debug, Clone)]
pub struct IdempotencySeed(pub String);

enum Claim {
    Run(IdempotencySeed),
    Replay(Response),
    Refuse(ApiError),
}

pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(IDEMPOTENCY_HEADER).cloned() else {
        return next.run(request).await;
    };
    let key = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= MAX_KEY_LEN => k.to_owned(),
        _ => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
            )
            .into_response()
        }
    };
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
    let fingerprint = fingerprint(&parts.method, parts.uri.path(), &parts.headers, &body);
    let seed = match claim(&state.pool, &key, &fingerprint).await {
        Ok(Claim::Run(seed)) => seed,
        Ok(Claim::Replay(response)) => return response,
        Ok(Claim::Refuse(problem)) => return problem.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "idempotency store unavailable");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the idempotency store is unavailable",
            )
            .into_response();
        }
    };
    let mut request = Request::from_parts(parts, Body::from(body));
    request.extensions_mut().insert(seed);
    let response = next.run(request).await;
    match remember(&state.pool, &key, response).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "could not store an idempotent response");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the request may have been applied; retry with the same Idempotency-Key",
            )
            .into_response()
        }
    }
}

fn seed(key: &str, claimed_at: DateTime<Utc>) -> IdempotencySeed {
    IdempotencySeed(format!("{key}\n{}", claimed_at.timestamp_micros()))
}

fn fingerprint(method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    let customer = headers
        .get(CUSTOMER_HEADER)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    let mut hash = Sha256::new();
    for part in [method.as_str().as_bytes(), path.as_bytes(), customer, body] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().to_vec()
}

async fn claim(pool: &PgPool, key: &str, fingerprint: &[u8]) -> Result<Claim, sqlx::Error> {
    for _ in 0..3 {
        let inserted: Option<DateTime<Utc>> = sqlx::query_scalar(
            "INSERT INTO idempotency_keys (key, fingerprint, state) VALUES ($1, $2, 'in_flight')
             ON CONFLICT (key) DO NOTHING RETURNING created_at",
        )
        .bind(key)
        .bind(fingerprint)
        .fetch_optional(pool)
        .await?;
        if let Some(created_at) = inserted {
            return Ok(Claim::Run(seed(key, created_at)));
        }
        let Some(row) = sqlx::query(
            "SELECT fingerprint, state, response_status, response_headers, response_body, created_at,
                    created_at < now() - interval '24 hours' AS expired,
                    updated_at < now() - make_interval(secs => $2) AS stale
               FROM idempotency_keys WHERE key = $1",
        )
        .bind(key)
        .bind(f64::from(STALE_AFTER_SECONDS))
        .fetch_optional(pool)
        .await?
        else {
            continue;
        };
        if row.try_get::<bool, _>("expired")? {
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE key = $1 AND created_at < now() - interval '24 hours'",
            )
            .bind(key)
            .execute(pool)
            .await?;
            continue;
        }
        if row.try_get::<String, _>("state")? == "in_flight" {
            if row.try_get::<bool, _>("stale")? {
                let taken = sqlx::query(
                    "UPDATE idempotency_keys SET updated_at = now()
                      WHERE key = $1 AND state = 'in_flight'
                        AND updated_at < now() - make_interval(secs => $2)",
                )
                .bind(key)
                .bind(f64::from(STALE_AFTER_SECONDS))
                .execute(pool)
                .await?;
                if taken.rows_affected() == 1 {
                    return Ok(Claim::Run(seed(key, row.try_get("created_at")?)));
                }
            }
            return Ok(Claim::Refuse(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_request_in_flight",
                "a request with this Idempotency-Key is still being processed",
            )));
        }
        if row.try_get::<Vec<u8>, _>("fingerprint")? != fingerprint {
            return Ok(Claim::Refuse(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            )));
        }
        let status = row.try_get::<i16, _>("response_status")?;
        let headers: serde_json::Value = row.try_get("response_headers")?;
        let body: Vec<u8> = row.try_get("response_body")?;
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
        if let Some(map) = headers.as_object() {
            for (name, value) in map {
                if let (Ok(n), Some(Ok(v))) = (
                    HeaderName::try_from(name.as_str()),
                    value.as_str().map(HeaderValue::from_str),
                ) {
                    response.headers_mut().insert(n, v);
                }
            }
        }
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        return Ok(Claim::Replay(response));
    }
    Ok(Claim::Refuse(ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_request_in_flight",
        "this Idempotency-Key is changing hands; retry",
    )))
}

async fn remember(pool: &PgPool, key: &str, response: Response) -> Result<Response, sqlx::Error> {
    if response.status().is_server_error() {
        sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND state = 'in_flight'")
            .bind(key)
            .execute(pool)
            .await?;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let headers: serde_json::Map<String, serde_json::Value> = KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = parts.headers.get(name)?.to_str().ok()?;
            Some((name.as_str().to_owned(), value.into()))
        })
        .collect();
    sqlx::query(
        "UPDATE idempotency_keys
            SET state = 'done', response_status = $2, response_headers = $3, response_body = $4,
                updated_at = now()
          WHERE key = $1",
    )
    .bind(key)
    .bind(parts.status.as_u16() as i16)
    .bind(serde_json::Value::Object(headers))
    .bind(body.as_ref())
    .execute(pool)
    .await?;
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// Deletes stored responses older than 24 hours (called by the sweeper).
pub async fn purge_expired(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let done =
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'")
            .execute(pool)
            .await?;
    Ok(done.rows_affected())
}
