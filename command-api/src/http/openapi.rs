//! The OpenAPI document's frame: title, tags and the bearer-token security scheme. Its paths and
//! schemas are registered by the routers themselves ([`super::routes`]), so the document cannot
//! miss a route.

use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{OneOfBuilder, Schema};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, RefOr, ResponseBuilder, Type};
use utoipa::{Modify, OpenApi};

use super::headers::IDEMPOTENCY_HEADER;

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
        (name = "development", description = "Development sign-in (off unless SEATGRID_DEV_LOGIN=on)"),
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

/// Answers every operation may give besides its own, documented once: 429 everywhere but health,
/// 413/415 wherever there is a body, and for operations with an `Idempotency-Key`, the key's shape
/// (a pattern) and its refusals.
/// Applied to the whole document once the routers have registered their paths.
pub struct SharedResponses;

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                super::error::PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}

fn add(operation: &mut Operation, status: &str, description: &str) {
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| problem(description));
}

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                if !path.starts_with("/health") {
                    add(operation, "429", "Rate limited; retry after Retry-After");
                }
                if operation.request_body.is_some() {
                    add(
                        operation,
                        "413",
                        "The body is larger than the server's limit",
                    );
                    add(operation, "415", "The body is not application/json");
                }
                let Some(key) = operation.parameters.as_mut().and_then(|ps| {
                    ps.iter_mut()
                        .find(|p| p.name.eq_ignore_ascii_case(IDEMPOTENCY_HEADER))
                }) else {
                    continue;
                };
                key.schema = Some(RefOr::T(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some("^[!-~]{1,255}$"))
                        .min_length(Some(1))
                        .max_length(Some(booking::idempotency::MAX_KEY_LEN))
                        .into(),
                ));
                add(operation, "400", "Malformed Idempotency-Key");
                add(
                    operation,
                    "422",
                    "Invalid request, or the Idempotency-Key was used for another request",
                );
                add(
                    operation,
                    "409",
                    "Conflict, or a request with this Idempotency-Key is still running",
                );
            }
        }
    }
}

/// How a request names a seat (the document's view of `domain::SeatRef`): a seat id, or labels
/// with `row` and `seat` as strings or numbers (`section` may be left out in a one-section event).
pub struct SeatRefSchema;

impl utoipa::PartialSchema for SeatRefSchema {
    fn schema() -> RefOr<Schema> {
        let label = || {
            OneOfBuilder::new()
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1)),
                )
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0)),
                )
        };
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .maximum(Some(u32::MAX))
                    .description(Some("A seat id")),
            )
            .item(
                ObjectBuilder::new()
                    .property("section", ObjectBuilder::new().schema_type(Type::String))
                    .property("row", label())
                    .property("seat", label())
                    .required("row")
                    .required("seat")
                    .description(Some("A seat by its labels")),
            )
            .into()
    }
}

impl utoipa::ToSchema for SeatRefSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "SeatRef".into()
    }
}
