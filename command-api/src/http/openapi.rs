//! The OpenAPI document's frame: title, tags and the bearer-token security scheme. Its paths and
//! schemas are registered by the routers themselves ([`super::routes`]), so the document cannot
//! miss a route.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "SeatGrid command API", description = "Hold and book seats for flash sales. \
        Errors are application/problem+json. Commands act for the caller named by the bearer token \
        (`Authorization: Bearer <JWT>`, subject = customer, `role` claim = buyer, organizer or \
        admin); there is no customer id in requests. Event and seat-map reads are public."),
    modifiers(&BearerAuth),
    tags(
        (name = "events", description = "Ticketed events and their seat maps"),
        (name = "holds", description = "Holding, booking and releasing seats"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

/// The name operations use in `security(("bearer" = []))`.
pub const BEARER: &str = "bearer";

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT whose `sub` is the customer and whose `role` claim is buyer \
                         (default), organizer or admin. `seatgrid token --sub alice --role buyer` \
                         mints one for development.",
                    ))
                    .build(),
            ),
        );
    }
}
