//! `/api/orders`: placing an order from the caller's holds, reading it, cancelling it.
//!
//! An order waits for its payment (`pending_payment`) until the provider's notification arrives
//! (`POST /api/payments/webhook`); then the order process books its seats (`confirmed`) or gives
//! them back. A server without a payment provider takes orders that simply expire at
//! `payment_due`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use booking::orders::OrderView;
use domain::{HoldId, OrderId};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Authenticated;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, Context, PathId};
use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place_order))
        .routes(routes!(get_order))
        .routes(routes!(cancel_order))
}

/// The caller's holds (1 to 10, all of one event) to buy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    pub hold_ids: Vec<uuid::Uuid>,
}

#[utoipa::path(post, path = "/orders", tag = "orders",
    security(("bearer" = [])),
    request_body = OrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe for 24 h")),
    responses(
        (status = 201, description = "Placed: pay by payment_due; the holds last until then", body = OrderView),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Someone else's hold", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such hold", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A hold expired, was released, failed or is booked", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No holds, too many, listed twice, of several events, or in another order", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn place_order(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Context(ctx): Context,
    ApiJson(request): ApiJson<OrderRequest>,
) -> Result<Response, ApiError> {
    let holds = request.hold_ids.into_iter().map(HoldId).collect();
    let view = state.service.place_order(holds, &caller, &ctx).await?;
    let location = format!("/api/orders/{}", view.order_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

#[utoipa::path(get, path = "/orders/{order_id}", tag = "orders",
    security(("bearer" = [])),
    params(("order_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = OrderView),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Neither the order's customer nor its event's organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_order(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(order_id): PathId<OrderId>,
) -> Result<Json<OrderView>, ApiError> {
    Ok(Json(state.service.order(order_id, &caller).await?))
}

/// Cancels the caller's order: before payment its holds are released; once confirmed its payment
/// is refunded and then its seats go back on sale (`refund_pending`, then `refunded`). Cancelling
/// again answers the order as it stands.
#[utoipa::path(post, path = "/orders/{order_id}/cancel", tag = "orders",
    security(("bearer" = [])),
    params(
        ("order_id" = uuid::Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe for 24 h"),
    ),
    responses(
        (status = 200, description = "Cancelled, or being refunded", body = OrderView),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Someone else's order", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Paid and being booked: cancel once confirmed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel_order(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(order_id): PathId<OrderId>,
    Context(ctx): Context,
) -> Result<Json<OrderView>, ApiError> {
    Ok(Json(
        state.service.cancel_order(order_id, &caller, &ctx).await?,
    ))
}
