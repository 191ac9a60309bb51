//! The REST adapter over the application core: one module per resource, each exposing `router()`
//! (routes and their OpenAPI operations registered together), composed here with a cloneable state
//! and idempotency on the routes; [`around_router`] puts the cross-cutting layers (request ids,
//! request spans and metrics, identity, rate limits, problem+json for every error, body limits)
//! around the whole router once.

pub mod auth;
pub mod dev_login;
pub mod docs;
pub mod error;
pub mod events;
pub mod extract;
pub mod headers;
pub mod health;
pub mod holds;
pub mod idempotency;
pub mod limits;
pub mod observability;
pub mod openapi;
pub mod orders;
pub mod pages;
pub mod payments;

use std::sync::Arc;

use axum::body::to_bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use booking::BookingCommands;
use sqlx::PgPool;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use error::{ApiError, PROBLEM_JSON};

/// What every handler reads: one shared allocation, so the clones axum makes for each request
/// (one per layer and extractor) cost one reference count each.
#[derive(Clone)]
pub struct AppState(Arc<AppStateParts>);

impl AppState {
    pub fn new(parts: AppStateParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateParts;
    fn deref(&self) -> &AppStateParts {
        &self.0
    }
}

/// The parts of [`AppState`], as the application assembles them before serving.
pub struct AppStateParts {
    pub service: Arc<dyn BookingCommands>,
    /// Verifies bearer tokens ([`auth`]).
    pub auth: Arc<booking::Authenticator>,
    pub pool: PgPool,
    pub max_body_bytes: usize,
    /// Fast seat maps from the read side, when this process has one.
    pub projected: Option<Arc<dyn ProjectedSeatMaps>>,
    /// Verifies payment notifications; `None` when payments are not configured.
    pub webhook_secret: Option<Arc<secrecy::SecretString>>,
    /// `POST /api/dev/token` mints tokens ([`dev_login`]).
    pub dev_login: bool,
}

/// Where `GET /api/events/{id}/seats` gets its seat map by default: the projected read model
/// (cached, milliseconds behind the event store). Without one, or with `?consistency=strong`, the
/// seat map is computed from the event store itself.
#[async_trait::async_trait]
pub trait ProjectedSeatMaps: Send + Sync {
    /// The compact seat map (`A`/`H`/`B` per seat id), or `None` if the read side cannot answer.
    async fn seat_map(&self, event_id: uuid::Uuid) -> Option<String>;
}

/// Every REST route with its OpenAPI operation, and the document they make.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest(
            "/api",
            OpenApiRouter::new()
                .merge(events::router())
                .merge(holds::router())
                .merge(orders::router())
                .merge(payments::router())
                .merge(dev_login::router()),
        )
        .merge(health::router())
        .split_for_parts();
    let mut doc = doc;
    utoipa::Modify::modify(&openapi::SharedResponses, &mut doc);
    (routes, doc)
}

/// The OpenAPI document of the REST API (served at `/api/openapi.json`).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    routes().1
}

pub fn router(state: AppState) -> Router {
    let (routes, doc) = routes();
    let doc = Arc::new(doc);
    Router::new()
        .merge(routes)
        .merge(docs::router())
        .merge(pages::router())
        .route(
            "/api/openapi.json",
            get(move || std::future::ready(Json(doc.clone()))),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .fallback(|| async { ApiError::from_status(StatusCode::NOT_FOUND, "no such resource") })
        .with_state(state)
}

/// The layers every request meets before routing, outermost first, in one stack around the
/// whole router (see `crate::startup`): request ids (set, and copied onto every response, errors
/// included), the request's span and metrics, the caller's identity, rate limits, problem+json
/// for every error, and the body limits.
pub fn around_router(
    app: Router,
    auth: Arc<booking::Authenticator>,
    limiters: Option<Arc<limits::Limiters>>,
    max_body_bytes: usize,
) -> impl tower::Service<
    axum::extract::Request,
    Response = Response,
    Error = std::convert::Infallible,
    Future: Send,
> + Clone
       + Send
       + Sync
       + 'static {
    let request_id = HeaderName::from_static(headers::REQUEST_ID_HEADER);
    tower::ServiceBuilder::new()
        .map_response(IntoResponse::into_response)
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(observability::request_span),
        )
        .layer(middleware::from_fn_with_state(
            observability::RequestMetrics::default(),
            observability::track,
        ))
        // The token is verified once, for every route.
        .map_request(move |request| auth::identify(&auth, request))
        .option_layer(limiters.map(|l| middleware::from_fn_with_state(l, limits::rate_limit)))
        .and_then(|response| async move {
            Ok::<_, std::convert::Infallible>(problem_for_every_error(response).await)
        })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .map_response(IntoResponse::into_response)
        // Every route, GraphQL included: a body over the limit is refused as it streams in.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            max_body_bytes,
        ))
        .service(app)
}

/// `/health/live` and `/health/ready` alone, for a process without the API role.
pub fn health_router(state: AppState) -> Router {
    let (routes, _) = OpenApiRouter::new()
        .merge(health::router())
        .split_for_parts();
    routes
        .fallback(|| async { ApiError::from_status(StatusCode::NOT_FOUND, "no such resource") })
        .with_state(state)
}

/// Turns error responses the framework produced (405, 413, plain-text rejections) into
/// problem+json, so clients see one error format everywhere. JSON errors (problem+json, and
/// GraphQL's own error responses) pass as they are.
pub async fn problem_for_every_error(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            let v = v.as_bytes();
            v.starts_with(PROBLEM_JSON.as_bytes())
                || v.starts_with(b"application/json")
                || v.starts_with(b"application/graphql-response+json")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = to_bytes(body, 4096).await.unwrap_or_default();
    let detail = String::from_utf8_lossy(&text).trim().to_owned();
    let detail = if detail.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        detail
    };
    let mut problem = ApiError::from_status(status, detail).into_response();
    // The route it answered for, among others (see `observability::track`).
    *problem.extensions_mut() = parts.extensions;
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        problem.headers_mut().insert(header::ALLOW, allow.clone());
    }
    problem
}
