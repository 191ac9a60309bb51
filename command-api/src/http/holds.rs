//! `/api/holds/{hold_id}`: a hold's status, booking it, releasing it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use booking::views::HoldView;
use domain::HoldId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Authenticated;
use super::error::{ApiError, Problem};
use super::extract::{Context, PathId};
use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_hold, release_hold))
        .routes(routes!(book_hold))
}

#[utoipa::path(get, path = "/holds/{hold_id}", tag = "holds",
    security(("bearer" = [])),
    params(("hold_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = HoldView),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Neither the hold's customer nor its event's organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_hold(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(hold_id): PathId<HoldId>,
) -> Result<Json<HoldView>, ApiError> {
    Ok(Json(state.service.hold(hold_id, &caller).await?))
}

/// Books a hold without payment, for the hold's customer: a complimentary ticket, for the
/// event's organizer (or an admin) only. Buyers pay through `POST /api/orders`. A body, if any,
/// is ignored.
#[utoipa::path(post, path = "/holds/{hold_id}/book", tag = "holds",
    security(("bearer" = [])),
    params(
        ("hold_id" = uuid::Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe for 24 h"),
    ),
    responses(
        (status = 200, description = "Booked (again: booking twice is idempotent)", body = HoldView),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the event's organizer (buyers order and pay)", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Expired, released, failed, or booked by someone else", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn book_hold(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(hold_id): PathId<HoldId>,
    Context(ctx): Context,
) -> Result<Json<HoldView>, ApiError> {
    Ok(Json(state.service.book_hold(hold_id, &caller, &ctx).await?))
}

#[utoipa::path(delete, path = "/holds/{hold_id}", tag = "holds",
    security(("bearer" = [])),
    params(("hold_id" = uuid::Uuid, Path)),
    responses(
        (status = 204, description = "Released (or already released or expired)"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Someone else's hold", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already booked", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn release_hold(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(hold_id): PathId<HoldId>,
    Context(ctx): Context,
) -> Result<StatusCode, ApiError> {
    state.service.release_hold(hold_id, &caller, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}
