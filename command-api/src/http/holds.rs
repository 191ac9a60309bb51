//! `/api/holds/{hold_id}`: a hold's status, booking it, releasing it.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use booking::views::HoldView;
use domain::HoldId;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, Problem};
use super::extract::{customer_id, optional_json, Context, PathId};
use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_hold, release_hold))
        .routes(routes!(book_hold))
}

#[utoipa::path(get, path = "/holds/{hold_id}", tag = "holds",
    params(("hold_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = HoldView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_hold(
    State(state): State<AppState>,
    PathId(hold_id): PathId<HoldId>,
) -> Result<Json<HoldView>, ApiError> {
    Ok(Json(state.service.hold(hold_id).await?))
}

/// Optional body of a booking: who books, if not sent as `X-Customer-Id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookRequest {
    pub customer_id: Option<String>,
}

#[utoipa::path(post, path = "/holds/{hold_id}/book", tag = "holds",
    request_body(content = Option<BookRequest>, description = "Optional"),
    params(
        ("hold_id" = uuid::Uuid, Path),
        ("X-Customer-Id" = Option<String>, Header, description = "The hold's customer (or customer_id in the body)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe for 24 h"),
    ),
    responses(
        (status = 200, description = "Booked (again: booking twice is idempotent)", body = HoldView),
        (status = 403, description = "Someone else's hold", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Expired, released, failed, or booked by someone else", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn book_hold(
    State(state): State<AppState>,
    PathId(hold_id): PathId<HoldId>,
    Context(ctx): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<HoldView>, ApiError> {
    let request: Option<BookRequest> = optional_json(&body)?;
    let customer = customer_id(&headers, request.and_then(|r| r.customer_id).as_deref())?;
    Ok(Json(
        state.service.book_hold(hold_id, customer, &ctx).await?,
    ))
}

#[utoipa::path(delete, path = "/holds/{hold_id}", tag = "holds",
    params(
        ("hold_id" = uuid::Uuid, Path),
        ("X-Customer-Id" = String, Header, description = "The hold's customer"),
    ),
    responses(
        (status = 204, description = "Released (or already released or expired)"),
        (status = 403, description = "Someone else's hold", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already booked", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn release_hold(
    State(state): State<AppState>,
    PathId(hold_id): PathId<HoldId>,
    Context(ctx): Context,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let customer = customer_id(&headers, None)?;
    state.service.release_hold(hold_id, customer, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}
