//! `/api/events`: create a ticketed event, read it, read its seat map, hold seats in it.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::{EventId, LayoutSpec, NewEvent, PriceTier, RowSpec, SeatRef, SectionSpec};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ApiError, Problem};
use super::extract::{customer_id, ApiJson, Context, PathId};
use super::AppState;
use crate::service::BookingCommands;
use crate::views::{EventView, HoldView, SeatMapView};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/events", post(create_event))
        .route("/events/{event_id}", get(get_event))
        .route("/events/{event_id}/seats", get(get_seat_map))
        .route("/events/{event_id}/holds", post(hold_seats))
}

/// A new ticketed event. Give the layout either as a grid (`rows` x `cols`, one price) or as
/// `sections` with `price_tiers`; the grid may also be given at the top level, as in the seed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEventRequest {
    #[schema(example = "Flash Sale Live")]
    pub name: String,
    pub venue: Option<String>,
    #[serde(alias = "date")]
    pub starts_at: Option<DateTime<Utc>>,
    /// ISO 4217 code; default EUR.
    pub currency: Option<String>,
    pub rows: Option<u32>,
    pub cols: Option<u32>,
    pub price_cents: Option<u64>,
    pub layout: Option<LayoutRequest>,
    /// Hold length for this event (default 600 s, capped by the server).
    pub hold_seconds: Option<u32>,
    /// Seats one customer may hold plus book for this event (default 10, capped by the server).
    pub max_seats_per_customer: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LayoutRequest {
    pub rows: Option<u32>,
    pub cols: Option<u32>,
    pub price_cents: Option<u64>,
    pub price_tiers: Option<Vec<PriceTierRequest>>,
    pub sections: Option<Vec<SectionRequest>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceTierRequest {
    pub name: String,
    pub price_cents: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionRequest {
    pub name: String,
    pub price_tier: String,
    pub rows: Vec<RowRequest>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RowRequest {
    pub label: String,
    pub seats: u32,
}

impl CreateEventRequest {
    pub fn into_new_event(self) -> Result<NewEvent, ApiError> {
        let invalid = |msg: &str| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                msg.to_owned(),
            )
        };
        let layout =
            match self.layout {
                Some(LayoutRequest {
                    sections: Some(sections),
                    price_tiers,
                    rows: None,
                    cols: None,
                    price_cents: None,
                }) => LayoutSpec {
                    price_tiers: price_tiers
                        .ok_or_else(|| invalid("a layout with sections needs price_tiers"))?
                        .into_iter()
                        .map(|t| PriceTier {
                            name: t.name,
                            price_cents: t.price_cents,
                        })
                        .collect(),
                    sections: sections
                        .into_iter()
                        .map(|s| SectionSpec {
                            name: s.name,
                            price_tier: s.price_tier,
                            rows: s
                                .rows
                                .into_iter()
                                .map(|r| RowSpec {
                                    label: r.label,
                                    seats: r.seats,
                                })
                                .collect(),
                        })
                        .collect(),
                },
                Some(LayoutRequest {
                    rows: Some(rows),
                    cols: Some(cols),
                    price_cents,
                    sections: None,
                    price_tiers: None,
                }) if self.rows.is_none() && self.cols.is_none() => {
                    LayoutSpec::grid(rows, cols, price_cents.or(self.price_cents).unwrap_or(0))
                }
                Some(_) => return Err(invalid(
                    "layout must be either {rows, cols, price_cents} or {price_tiers, sections}",
                )),
                None => match (self.rows, self.cols) {
                    (Some(rows), Some(cols)) => {
                        LayoutSpec::grid(rows, cols, self.price_cents.unwrap_or(0))
                    }
                    _ => return Err(invalid(
                        "give a layout: rows and cols, or layout.sections with layout.price_tiers",
                    )),
                },
            };
        Ok(NewEvent {
            name: self.name,
            venue: self.venue,
            starts_at: self.starts_at,
            currency: self.currency,
            layout,
            hold_seconds: self.hold_seconds,
            max_seats_per_customer: self.max_seats_per_customer,
        })
    }
}

#[utoipa::path(post, path = "/api/events", tag = "events",
    request_body = CreateEventRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe for 24 h")),
    responses(
        (status = 201, description = "Created", body = EventView),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid event or layout", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_event(
    State(state): State<AppState>,
    Context(ctx): Context,
    ApiJson(request): ApiJson<CreateEventRequest>,
) -> Result<Response, ApiError> {
    let draft = request.into_new_event()?;
    let view = state.service.create_event(draft, &ctx).await?;
    let location = format!("/api/events/{}", view.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/events/{event_id}", tag = "events",
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

#[utoipa::path(get, path = "/api/events/{event_id}/seats", tag = "events",
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

/// Seats to hold for a customer. Each seat is a seat id (number) or `{section, row, seat}`
/// (`section` may be left out when the event has one section).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    /// Who holds; may instead be sent as the `X-Customer-Id` header.
    pub customer_id: Option<String>,
    #[schema(value_type = Vec<Object>, example = json!([12, {"row": "3", "seat": 4}]))]
    pub seats: Vec<Value>,
}

pub fn parse_seat_refs(values: Vec<Value>) -> Result<Vec<SeatRef>, ApiError> {
    let mut refs = Vec::with_capacity(values.len());
    let mut problems = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        match serde_json::from_value::<SeatRef>(value) {
            Ok(r) => refs.push(r),
            Err(_) => problems.push(format!(
                "seats[{i}] must be a seat id (a number from 0) or an object {{section, row, seat}}"
            )),
        }
    }
    if problems.is_empty() {
        Ok(refs)
    } else {
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_seat",
            problems.join("; "),
        )
        .with("errors", problems))
    }
}

#[utoipa::path(post, path = "/api/events/{event_id}/holds", tag = "holds",
    request_body = HoldRequest,
    params(
        ("event_id" = uuid::Uuid, Path),
        ("X-Customer-Id" = Option<String>, Header, description = "The customer (or customer_id in the body)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe for 24 h"),
    ),
    responses(
        (status = 201, description = "Held until expires_at", body = HoldView),
        (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Some seats are not available (listed in `seats`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown, duplicate, no or too many seats; over the customer's limit", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too much contention; retry after Retry-After", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn hold_seats(
    State(state): State<AppState>,
    PathId(event_id): PathId<EventId>,
    Context(ctx): Context,
    headers: HeaderMap,
    ApiJson(request): ApiJson<HoldRequest>,
) -> Result<Response, ApiError> {
    let customer = customer_id(&headers, request.customer_id.as_deref())?;
    let seats = parse_seat_refs(request.seats)?;
    let view = state
        .service
        .hold_seats(event_id, customer, seats, &ctx)
        .await?;
    let location = format!("/api/holds/{}", view.hold_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}
