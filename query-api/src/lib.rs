//! SeatGrid's GraphQL API (async-graphql on axum) at `/graphql`: a GraphiQL page on `GET`, queries
//! and mutations on `POST`, subscriptions over WebSocket (graphql-transport-ws, or the older
//! graphql-ws) on `/graphql` itself or `/graphql/ws`.
//!
//! - [`schema`]: the schema, its limits and the query root; [`mutations`], [`subscriptions`]: the
//!   other roots; [`inputs`]: input types, converted into the core's request shapes.
//! - [`types`]: the object types; [`loaders`]: batching of children; [`errors`]: codes.
//! - [`live`]: Redis pub/sub fan-out for subscriptions.
//! - [`analytics`]: the organizer reports from ClickHouse under `analytics`.

pub mod analytics;
pub mod errors;
pub mod inputs;
pub mod live;
pub mod loaders;
pub mod mutations;
pub mod schema;
pub mod subscriptions;
pub mod types;

use async_graphql::http::GraphiQLSource;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{
    GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLSubscription, GraphQLWebSocket,
};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub use analytics::AnalyticsSources;
pub use live::LiveUpdates;
pub use schema::{build_schema, sdl, RequestMeta, SeatGridSchema, MAX_COMPLEXITY, MAX_DEPTH};

pub const GRAPHQL_PATH: &str = "/graphql";
pub const GRAPHQL_WS_PATH: &str = "/graphql/ws";

/// The GraphQL routes, ready to merge into the application's router.
pub fn router(schema: SeatGridSchema) -> Router {
    Router::new()
        .route(GRAPHQL_PATH, get(graphiql_or_subscription).post(graphql))
        .route_service(GRAPHQL_WS_PATH, GraphQLSubscription::new(schema.clone()))
        .with_state(schema)
}

/// A WebSocket upgrade starts a subscription session; any other `GET` gets the GraphiQL page.
async fn graphiql_or_subscription(
    State(schema): State<SeatGridSchema>,
    protocol: Result<GraphQLProtocol, StatusCode>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match (protocol, upgrade) {
        (Ok(protocol), Ok(upgrade)) => upgrade
            .protocols(ALL_WEBSOCKET_PROTOCOLS)
            .on_upgrade(move |stream| GraphQLWebSocket::new(stream, schema, protocol).serve())
            .into_response(),
        _ => Html(
            GraphiQLSource::build()
                .endpoint(GRAPHQL_PATH)
                .subscription_endpoint(GRAPHQL_WS_PATH)
                .finish(),
        )
        .into_response(),
    }
}

async fn graphql(
    State(schema): State<SeatGridSchema>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let correlation_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let meta = RequestMeta {
        correlation_id,
        headers,
    };
    let mut response = schema.execute(request.into_inner().data(meta)).await;
    for error in &mut response.errors {
        give_code(error);
    }
    response.into()
}

/// Errors the framework raises itself (syntax, validation, limits) get a code too, so that every
/// error a client sees has `extensions.code`.
fn give_code(error: &mut async_graphql::ServerError) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_some() {
        return;
    }
    let code = if error.message.contains("nested too deep") {
        "query_too_deep"
    } else if error.message.contains("too complex") {
        "query_too_complex"
    } else {
        "invalid_query"
    };
    extensions.set("code", code);
}
