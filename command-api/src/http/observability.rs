//! Request metrics and request spans for every route the server has (REST and GraphQL alike).
//!
//! - `seatgrid_http_requests_total{method, route, status}` and
//!   `seatgrid_http_request_duration_seconds{method, route, status}`; `route` is the route
//!   template (`/api/events/:event_id/holds`), never the raw path, so ids do not explode the
//!   label space.
//! - One `http_request` span per request, continuing the caller's W3C `traceparent` when sent; its
//!   `trace_id` field puts the trace id into every log line of the request.
//! - Both wrap the router once (outside routing, see `crate::startup`); the route is known only
//!   after routing, so [`on_route`], the one layer on the routes themselves, names it in the span
//!   and hands it to [`track`] on the response (a request answered before routing, an unknown
//!   path, a rate limit or a body over the limit, is `unmatched`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The handles of the request metrics, registered with the recorder once per route, method and
/// status, then kept (looking them up in the recorder built and hashed the labels again on every
/// request: about ten allocations each). Methods outside the standard ones count as `OTHER`, so
/// clients cannot grow the label space.
#[derive(Clone, Default)]
pub struct RequestMetrics(Arc<RwLock<HashMap<String, ByMethodAndStatus>>>);

/// One route's handles.
type ByMethodAndStatus = HashMap<(Method, u16), Handles>;

#[derive(Clone)]
struct Handles {
    duration: metrics::Histogram,
    count: metrics::Counter,
}

impl RequestMetrics {
    fn record(&self, method: &Method, matched: Option<&MatchedPath>, status: u16, took: Duration) {
        let path = matched.map_or("", MatchedPath::as_str);
        let method = match method.as_str() {
            "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => method.clone(),
            _ => Method::from_bytes(b"OTHER").expect("a valid method name"),
        };
        let key = (method, status);
        let known = {
            let by_route = self.0.read().unwrap_or_else(|e| e.into_inner());
            by_route.get(path).and_then(|m| m.get(&key)).cloned()
        };
        let handles = known.unwrap_or_else(|| self.register(path, key.clone()));
        handles.duration.record(took.as_secs_f64());
        handles.count.increment(1);
    }

    fn register(&self, path: &str, key: (Method, u16)) -> Handles {
        let route = if path.is_empty() {
            "unmatched".to_owned()
        } else {
            route_label(path)
        };
        let (method, status) = (key.0.as_str().to_owned(), key.1.to_string());
        let handles = Handles {
            duration: metrics::histogram!(
                "seatgrid_http_request_duration_seconds",
                "method" => method.clone(), "route" => route.clone(), "status" => status.clone()
            ),
            count: metrics::counter!(
                "seatgrid_http_requests_total",
                "method" => method, "route" => route, "status" => status
            ),
        };
        let mut by_route = self.0.write().unwrap_or_else(|e| e.into_inner());
        by_route
            .entry(path.to_owned())
            .or_default()
            .insert(key, handles.clone());
        handles
    }
}

/// The route template in the `:param` style (`/api/events/:event_id/holds`), which every
/// Prometheus text parser reads (some trip over braces in label values).
fn route_label(path: &str) -> String {
    path.replace('{', ":").replace('}', "")
}

/// Middleware on every route (after routing): names the route in the request's span, answers
/// 503 when the route runs past `limit` ([`super::limits::timed_out`]), and puts the route on
/// the response for [`track`].
pub async fn on_route(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    if let Some(m) = &matched {
        tracing::Span::current().record("route", m.as_str());
    }
    let mut response = tokio::time::timeout(limit, next.run(req))
        .await
        .unwrap_or_else(|_| super::limits::timed_out(limit));
    if let Some(m) = matched {
        response.extensions_mut().insert(m);
    }
    response
}

/// Middleware: counts and times every request.
pub async fn track(State(metrics): State<RequestMetrics>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let started = Instant::now();
    let response = next.run(req).await;
    metrics.record(
        &method,
        response.extensions().get::<MatchedPath>(),
        response.status().as_u16(),
        started.elapsed(),
    );
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

/// The span of one request (for `TraceLayer::make_span_with`); its `route` is recorded by
/// [`on_route`] once routing has found it.
pub fn request_span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    let span = tracing::info_span!(
        "http_request",
        method = %req.method(),
        route = tracing::field::Empty,
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
