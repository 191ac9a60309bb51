//! SeatGrid's GraphQL API (async-graphql on axum) at `/graphql`: a GraphiQL page on `GET`, queries
//! and mutations on `POST`, subscriptions over WebSocket (graphql-transport-ws, or the older
//! graphql-ws) on `/graphql` itself or `/graphql/ws`.
//!
//! - [`schema`]: the schema, its limits and the query root; [`mutations`], [`subscriptions`]: the
//!   other roots; [`inputs`]: input types, converted into the core's request shapes.
//! - [`types`]: the object types ([`orders`]: orders and their live stream; [`seats`]: seats); [`loaders`]: batching of children; [`errors`]: codes.
//! - [`live`]: Redis pub/sub fan-out for subscriptions; [`ws`]: the WebSocket endpoint's limits.
//! - [`auth`]: the caller, from the bearer token (header, or `connection_init` payload).
//! - [`graphiql`]: the GraphiQL page, with its assets served by this server.
//! - [`analytics`]: the organizer reports from ClickHouse under `analytics`.

pub mod analytics;
pub mod auth;
mod data;
pub mod errors;
pub mod graphiql;
pub mod inputs;
pub mod limits;
pub mod live;
pub mod loaders;
pub mod mutations;
pub mod orders;
pub mod schema;
pub mod seats;
pub mod subscriptions;
pub mod types;
pub mod ws;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Request, State, WebSocketUpgrade};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use booking::Authenticator;

pub use analytics::AnalyticsSources;
pub use booking::Identity;
pub use live::LiveUpdates;
pub use schema::{
    build_schema, sdl, RequestMeta, SeatGridSchema, MAX_ALIASES, MAX_COMPLEXITY, MAX_DEPTH,
};
pub use ws::WsLimits;

pub const GRAPHQL_PATH: &str = "/graphql";
pub const GRAPHQL_WS_PATH: &str = "/graphql/ws";

#[derive(Clone)]
struct GraphqlState {
    schema: SeatGridSchema,
    auth: Arc<Authenticator>,
    limits: WsLimits,
    connections: Arc<ws::Connections>,
    /// The GraphiQL page, rendered once.
    graphiql: Arc<str>,
}

/// The GraphQL routes, ready to merge into the application's router. Callers are verified with
/// `auth`; subscriptions are held to `limits`; the GraphiQL page loads its scripts from
/// `graphiql_assets`, a path this server serves them under.
pub fn router(
    schema: SeatGridSchema,
    auth: Arc<Authenticator>,
    limits: WsLimits,
    graphiql_assets: &str,
) -> Router {
    let state = GraphqlState {
        schema,
        auth,
        limits,
        connections: Arc::default(),
        graphiql: graphiql::page(graphiql_assets).into(),
    };
    Router::new()
        .route(GRAPHQL_PATH, get(graphiql_or_subscription).post(graphql))
        .route(GRAPHQL_WS_PATH, get(graphiql_or_subscription))
        .with_state(state)
}

/// The client's address, as the server saw the connection (unknown: one shared address).
pub fn client_ip(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

/// A WebSocket upgrade starts a subscription session; any other `GET` gets the GraphiQL page.
async fn graphiql_or_subscription(State(state): State<GraphqlState>, request: Request) -> Response {
    let client = client_ip(&request);
    let (mut parts, _) = request.into_parts();
    let protocol = <GraphQLProtocol as axum::extract::FromRequestParts<()>>::from_request_parts(
        &mut parts,
        &(),
    )
    .await;
    let upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection> =
        <WebSocketUpgrade as axum::extract::FromRequestParts<()>>::from_request_parts(
            &mut parts,
            &(),
        )
        .await;
    match (protocol, upgrade) {
        (Ok(protocol), Ok(upgrade)) => {
            let Some(slot) = state.connections.open(client, state.limits.max_per_client) else {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(axum::http::header::RETRY_AFTER, "10")],
                    format!(
                        "at most {} subscription connections per client",
                        state.limits.max_per_client
                    ),
                )
                    .into_response();
            };
            let GraphqlState {
                schema,
                auth,
                limits,
                ..
            } = state;
            upgrade
                .protocols(ALL_WEBSOCKET_PROTOCOLS)
                .on_upgrade(move |socket| ws::serve(socket, schema, protocol, auth, limits, slot))
                .into_response()
        }
        _ => Html(state.graphiql.to_string()).into_response(),
    }
}

async fn graphql(
    State(state): State<GraphqlState>,
    identity: Option<axum::Extension<Identity>>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let correlation_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // Verified once, in front of every route; verified here only when served without that step.
    let identity = match identity {
        Some(axum::Extension(identity)) => identity,
        None => state
            .auth
            .identify(headers.get(AUTHORIZATION).map(|v| v.as_bytes())),
    };
    let meta = RequestMeta {
        correlation_id,
        headers,
    };
    let mut response = state
        .schema
        .execute(request.into_inner().data(meta).data(identity))
        .await;
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
    } else if error.message.contains("aliases") {
        "too_many_aliases"
    } else if error.message.contains("too complex") {
        "query_too_complex"
    } else {
        "invalid_query"
    };
    extensions.set("code", code);
}
