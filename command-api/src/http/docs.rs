//! The vendored third-party assets, served from the binary: Swagger UI at `/api/docs` (over
//! `/api/openapi.json`) and, under [`ASSETS`], the scripts and styles of Swagger UI, of the
//! GraphiQL page that `GET /graphql` serves (query-api), and of the pages ([`super::pages`]:
//! graphql-ws, uPlot).
//!
//! Policy: nothing is loaded from a CDN (SeatGrid runs where there is no internet). The assets are
//! the pinned production builds that `scripts/ui-vendor` put, gzipped, in `ui/vendor/assets/`
//! (versions and licenses in `ui/vendor/assets/VERSIONS`); they are embedded at compile time and
//! sent as they are stored, with `Content-Encoding: gzip` (a client that does not accept gzip gets
//! 406) and a year's caching: their names carry no version, so the path does ([`ASSETS`]).

use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::error::ApiError;

/// Where the assets are served; query-api's GraphiQL page refers to the same path.
pub const ASSETS: &str = "/assets/dev-3.8.3-5.32.0";

macro_rules! asset {
    ($name:literal, $type:literal) => {
        (
            $name,
            $type,
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../ui/vendor/assets/",
                $name,
                ".gz"
            ))
            .as_slice(),
        )
    };
}

/// (file name, content type, gzipped bytes).
const FILES: [(&str, &str, &[u8]); 9] = [
    asset!("graphiql.min.js", "text/javascript"),
    asset!("graphiql.min.css", "text/css"),
    asset!("react.production.min.js", "text/javascript"),
    asset!("react-dom.production.min.js", "text/javascript"),
    asset!("swagger-ui-bundle.js", "text/javascript"),
    asset!("swagger-ui.css", "text/css"),
    asset!("graphql-ws.min.js", "text/javascript"),
    asset!("uPlot.iife.min.js", "text/javascript"),
    asset!("uPlot.min.css", "text/css"),
];

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(&format!("{ASSETS}/{{name}}"), get(asset))
        .route("/api/docs", get(swagger_ui))
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some((_, content_type, bytes)) = FILES.iter().find(|(n, ..)| *n == name) else {
        return ApiError::from_status(StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    if !gzip {
        return ApiError::from_status(
            StatusCode::NOT_ACCEPTABLE,
            "this asset is sent gzip-compressed: send Accept-Encoding: gzip",
        )
        .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, *content_type),
            (header::CONTENT_ENCODING, "gzip"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::VARY, "Accept-Encoding"),
        ],
        *bytes,
    )
        .into_response()
}

async fn swagger_ui() -> Html<String> {
    Html(format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>SeatGrid REST API</title>
  <link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui">Loading the API document...</div>
  <script src="{ASSETS}/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: '/api/openapi.json',
      dom_id: '#swagger-ui',
      deepLinking: true,
      persistAuthorization: true,
    }});
  </script>
</body>
</html>"#
    ))
}
