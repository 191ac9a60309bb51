//! `/api/events`: create a ticketed event, read it, read its seat map, hold seats in it.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use booking::validation::{seat_choice, BestSeatsInput, CreateEventRequest, SeatInput};
use booking::views::{EventView, HoldView, SeatMapView};
use domain::EventId;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Authenticated;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, Context, PathId};
use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_event))
        .routes(routes!(get_event))
        .routes(routes!(get_seat_map))
        .routes(routes!(hold_seats))
}

/// Creates an event managed by the caller (organizers and admins).
#[utoipa::path(post, path = "/events", tag = "events",
    security(("bearer" = [])),
    request_body = CreateEventRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe for 24 h")),
    responses(
        (status = 201, description = "Created", body = EventView),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an organizer", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid event or layout", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_event(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Context(ctx): Context,
    ApiJson(request): ApiJson<CreateEventRequest>,
) -> Result<Response, ApiError> {
    let draft = request.into_new_event()?;
    let view = state.service.create_event(draft, &caller, &ctx).await?;
    let location = format!("/api/events/{}", view.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

#[utoipa::path(get, path = "/events/{event_id}", tag = "events",
    params(("event_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = EventView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_event(
    State(state): State<AppState>,
    PathId(event_id): PathId<EventId>,
) -> Result<Json<EventView>, ApiError> {
    Ok(Json(state.service.event(event_id).await?))
}

/// `?consistency=strong` computes the seat map from the event store (never behind, slower);
/// the default serves the projected, cached read model (milliseconds behind) when there is one.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SeatMapQuery {
    /// `strong` or `eventual` (default).
    pub consistency: Option<String>,
}

#[utoipa::path(get, path = "/events/{event_id}/seats", tag = "events",
    params(("event_id" = uuid::Uuid, Path), SeatMapQuery),
    responses(
        (status = 200, description = "Every seat's status, one character per seat id", body = SeatMapView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown consistency", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_seat_map(
    State(state): State<AppState>,
    PathId(event_id): PathId<EventId>,
    Query(query): Query<SeatMapQuery>,
) -> Result<Response, ApiError> {
    let strong = match query.consistency.as_deref() {
        None | Some("eventual") => false,
        Some("strong") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("consistency must be strong or eventual, not {other:?}"),
            ))
        }
    };
    let projected = match (&state.projected, strong) {
        (Some(source), false) => source.seat_map(event_id.0).await,
        _ => None,
    };
    let map = match projected {
        Some(seats) => state.service.projected_seat_map(event_id, seats).await?,
        None => state.service.seat_map(event_id).await?,
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(map)).into_response())
}

/// Seats to hold for the caller (the token's subject): either `seats` by name, each a seat id
/// (number) or `{section, row, seat}` (`section` may be left out when the event has one section),
/// or a `quantity` of the best available seats (closest to the event's focal point, never leaving
/// a single seat alone when another choice avoids it), optionally `together` in one row and only
/// in one `section` or `price_tier`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    #[schema(value_type = Option<Vec<super::openapi::SeatRefSchema>>, example = json!([12, {"row": "3", "seat": 4}]))]
    pub seats: Option<Vec<Value>>,
    /// How many best available seats to hold (instead of `seats`).
    #[schema(minimum = 1, maximum = 10, example = 2)]
    pub quantity: Option<u32>,
    /// The best available seats must be adjacent in one row (default false: adjacent seats are
    /// still preferred).
    pub together: Option<bool>,
    /// Best available seats of this section only.
    pub section: Option<String>,
    /// Best available seats of this price tier only.
    pub price_tier: Option<String>,
}

#[utoipa::path(post, path = "/events/{event_id}/holds", tag = "holds",
    security(("bearer" = [])),
    request_body = HoldRequest,
    params(
        ("event_id" = uuid::Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe for 24 h"),
    ),
    responses(
        (status = 201, description = "Held until expires_at", body = HoldView),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Some seats are not available (listed in `seats`); for best available: `sold_out` or `not_enough_seats` (with `seats_free`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown, duplicate, no or too many seats; a bad quantity, section or price tier; over the customer's limit", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests waiting for these seats or this event (`busy`); retry after Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store could not be reached or kept conflicting; retry after Retry-After", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn hold_seats(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(event_id): PathId<EventId>,
    Context(ctx): Context,
    ApiJson(request): ApiJson<HoldRequest>,
) -> Result<Response, ApiError> {
    let HoldRequest {
        seats,
        quantity,
        together,
        section,
        price_tier,
    } = request;
    let best = BestSeatsInput {
        quantity,
        together,
        section,
        price_tier,
    };
    let seats = seat_choice(
        seats.map(|seats| seats.into_iter().map(SeatInput::Json).collect()),
        best,
    )?;
    let view = state
        .service
        .hold_seats(event_id, &caller, seats, &ctx)
        .await?;
    let location = format!("/api/holds/{}", view.hold_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}
