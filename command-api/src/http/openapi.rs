//! The OpenAPI document's frame: title and tags. Its paths and schemas are registered by the
//! routers themselves ([`super::routes`]), so the document cannot miss a route.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "SeatGrid command API", description = "Hold and book seats for flash sales. Errors are application/problem+json."),
    tags(
        (name = "events", description = "Ticketed events and their seat maps"),
        (name = "holds", description = "Holding, booking and releasing seats"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;
