//! The OpenAPI document, generated from the handlers' annotations and served at
//! `/api/openapi.json`.

use axum::Json;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "SeatGrid command API", description = "Hold and book seats for flash sales. Errors are application/problem+json."),
    paths(
        super::events::create_event,
        super::events::get_event,
        super::events::get_seat_map,
        super::events::hold_seats,
        super::holds::get_hold,
        super::holds::book_hold,
        super::holds::release_hold,
        super::health::live,
        super::health::ready,
    ),
    tags(
        (name = "events", description = "Ticketed events and their seat maps"),
        (name = "holds", description = "Holding, booking and releasing seats"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
