//! Request metrics and request spans for every route the server has (REST and GraphQL alike).
//!
//! - `seatgrid_http_requests_total{method, route, status}` and
//!   `seatgrid_http_request_duration_seconds{method, route, status}`; `route` is the route
//!   template (`/api/events/:event_id/holds`), never the raw path, so ids do not explode the
//!   label space.
//! - One `http_request` span per request, continuing the caller's W3C `traceparent` when sent; its
//!   `trace_id` field puts the trace id into every log line of the request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The route template in the `:param` style (`/api/events/:event_id/holds`), which every
/// Prometheus text parser reads (some trip over braces in label values).
fn route(req: &Request) -> String {
    req.extensions().get::<MatchedPath>().map_or_else(
        || "unmatched".to_owned(),
        |m| m.as_str().replace('{', ":").replace('}', ""),
    )
}

/// Middleware: counts and times every request.
pub async fn track(req: Request, next: Next) -> Response {
    let route = route(&req);
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        "seatgrid_http_request_duration_seconds",
        "method" => method.clone(), "route" => route.clone(), "status" => status.clone()
    )
    .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "seatgrid_http_requests_total",
        "method" => method, "route" => route, "status" => status
    )
    .increment(1);
    response
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The span of one request (for `TraceLayer::make_span_with`).
pub fn request_span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("", |m| m.as_str());
    let span = tracing::info_span!(
        "http_request",
        method = %req.method(),
        route,
        uri = %req.uri(),
        trace_id = tracing::field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&Headers(req.headers()));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    let trace_id = span.context().span().span_context().trace_id();
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", trace_id.to_string());
    }
    span
}
