//! The pages people use (`ui/app/`): the buyer's event list, seat map, checkout and tickets, and
//! the organizer's event form and sale dashboard. One HTML shell answers every page path; its
//! ES modules route in the browser and use the public REST and GraphQL APIs like any client.
//!
//! Policy: build-free. The modules and the stylesheet are embedded as written and sent
//! gzip-compressed when the browser accepts it; third-party code (graphql-ws, uPlot) comes from
//! the vendored assets ([`super::docs::ASSETS`]), never a CDN. The shell and the modules are
//! revalidated on every load (`no-cache`: a new server's pages are seen at once). The pages run
//! under a Content-Security-Policy that allows only this origin's scripts.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use super::docs::ASSETS;
use super::error::ApiError;

/// The paths the app answers with its shell (the browser routes them).
pub const PAGES: [&str; 6] = [
    "/",
    "/events/{event_id}",
    "/tickets",
    "/login",
    "/organizer",
    "/organizer/events/{event_id}",
];

macro_rules! file {
    ($name:literal, $type:literal) => {
        (
            $name,
            $type,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../ui/app/", $name)),
        )
    };
}

/// (file name, content type, text) of every module and style of the app.
pub const FILES: [(&str, &str, &str); 7] = [
    file!("app.js", "text/javascript"),
    file!("api.js", "text/javascript"),
    file!("dom.js", "text/javascript"),
    file!("seatmap.js", "text/javascript"),
    file!("buyer.js", "text/javascript"),
    file!("organizer.js", "text/javascript"),
    file!("style.css", "text/css"),
];

static SHELL: LazyLock<String> =
    LazyLock::new(|| include_str!("../../../ui/app/index.html").replace("%ASSETS%", ASSETS));

const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'";

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new().route("/app/{name}", get(file));
    for page in PAGES {
        router = router.route(page, get(shell));
    }
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(CompressionLayer::new().gzip(true))
}

async fn shell() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        SHELL.as_str(),
    )
        .into_response()
}

async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, ..)| *n == name) {
        Some((_, content_type, text)) => {
            ([(header::CONTENT_TYPE, *content_type)], *text).into_response()
        }
        None => ApiError::from_status(StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
