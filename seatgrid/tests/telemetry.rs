//! Observability end to end: a real OTLP/gRPC receiver, started inside the test, receives the spans
//! of one hold linked as one trace (HTTP request → command → each projection: the read models and
//! the ClickHouse stream), and `/metrics` parses as Prometheus text with counters that move.
//!
//! Its own test binary: the tracing subscriber and metrics recorder are global to a process.

use booking::Role;
use command_api::testing::bearer;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use command_api::CommandApiConfig;
use domain::EventPolicy;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use projections::RunnerConfig;
use seatgrid::config::LogFormat;
use seatgrid::system::{System, SystemConfig};
use serde_json::{json, Value};

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            V::StringValue(s) => s.clone(),
            V::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
}

async fn metric(client: &reqwest::Client, base: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("/metrics is Prometheus text format");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hold_is_one_trace_and_the_metrics_count_it() {
    // The receiver, on a free port.
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = listener.local_addr().unwrap();
    let service = TraceServiceServer::new(receiver.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"));
    std::env::set_var("OTEL_SERVICE_NAME", "seatgrid-test");
    let telemetry = seatgrid::telemetry::init(LogFormat::Json).expect("telemetry");

    let (_, pool) = migrations::testing::fresh_database(8).await;
    let config = SystemConfig {
        ws: query_api::WsLimits::default(),
        command: CommandApiConfig {
            policy: EventPolicy::default(),
            ..command_api::testing::config()
        },
        redis_url: std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        redis_prefix: format!("sgtest:{}:", uuid::Uuid::new_v4().simple()),
        runner: RunnerConfig::default(),
        clickhouse: Some(analytics::testing::fresh_config(
            &analytics::testing::server_url(),
        )),
        ingest: analytics::IngestConfig {
            max_delay: Duration::from_millis(200),
            ..analytics::IngestConfig::default()
        },
        payment_provider_url: None,
        roles: seatgrid::roles::Roles::ALL,
        leadership: seatgrid::leadership::LeaderConfig::default(),
    };
    let system = System::build(config, pool, Some(telemetry.metrics()))
        .await
        .unwrap();
    let base = format!("http://{}", system.local_addr());
    tokio::spawn(system.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();

    let event: Value = client
        .post(format!("{base}/api/events"))
        .header("authorization", bearer("olga", Role::Organizer))
        .json(&json!({"name": "Traced", "rows": 2, "cols": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event_id = event["id"].as_str().unwrap();
    let hold_route = [("route", "/api/events/:event_id/holds"), ("status", "201")];
    let holds_before = metric(&client, &base, "seatgrid_http_requests_total", &hold_route).await;
    let hold = |seat: u32| {
        let client = client.clone();
        let url = format!("{base}/api/events/{event_id}/holds");
        async move {
            let r = client
                .post(url)
                .header("authorization", bearer("tia", Role::Buyer))
                .json(&json!({"seats": [seat]}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.unwrap()["hold_id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let hold_id = hold(3).await;

    // The projection applies it (read side shows it), then every span is flushed.
    let query = json!({"query": "query($h: UUID!) { hold(id: $h) { status } }", "variables": {"h": hold_id}});
    for _ in 0..200 {
        let body: Value = client
            .post(format!("{base}/graphql"))
            .header("authorization", bearer("tia", Role::Buyer))
            .json(&query)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if body["data"]["hold"]["status"] == "HELD" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut found = None;
    for _ in 0..100 {
        telemetry.flush();
        let spans = receiver.0.lock().unwrap().clone();
        let command = spans.iter().find(|s| {
            s.name == "hold_seats" && attribute(s, "event_id").as_deref() == Some(event_id)
        });
        if let Some(command) = command {
            let trace = command.trace_id.clone();
            let in_trace: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace).collect();
            let projected_by = |projection: &str| {
                in_trace.iter().any(|s| {
                    s.name == "projection.apply"
                        && attribute(s, "projection").as_deref() == Some(projection)
                        && attribute(s, "event_type").as_deref()
                            == Some(domain::stored::event_type::SEAT_HELD)
                })
            };
            // The request's span names its route (recorded once routing has found it).
            let request = in_trace.iter().any(|s| {
                s.name == "http_request"
                    && attribute(s, "route").as_deref() == Some("/api/events/{event_id}/holds")
            });
            if request && projected_by("read_models") && projected_by("clickhouse_events") {
                found = Some(in_trace.len());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let spans = found.expect("the request, the command and both projections in one trace");
    assert!(spans >= 4);

    // Counters move, and they parse as Prometheus text.
    let ingested = metric(
        &client,
        &base,
        "seatgrid_clickhouse_rows_ingested_total",
        &[],
    )
    .await;
    assert!(ingested >= 2.0, "the event and the hold reached ClickHouse");
    let holds_after = metric(&client, &base, "seatgrid_http_requests_total", &hold_route).await;
    assert_eq!(holds_after, holds_before + 1.0);
    let ok = [("command", "hold"), ("outcome", "ok")];
    let commands = metric(&client, &base, "seatgrid_commands_total", &ok).await;
    hold(4).await;
    assert_eq!(
        metric(&client, &base, "seatgrid_commands_total", &ok).await,
        commands + 1.0
    );
    // GraphQL answers carry a request id too (the layers wrap every route).
    let graphql = client
        .post(format!("{base}/graphql"))
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert!(graphql.headers().contains_key("x-request-id"));
    // A method outside the standard ones is counted as OTHER, never under its own name.
    let odd = reqwest::Method::from_bytes(b"BREW").unwrap();
    let brewed = client
        .request(odd, format!("{base}/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(brewed.status(), 405);
    let other = [
        ("method", "OTHER"),
        ("route", "/health/live"),
        ("status", "405"),
    ];
    assert_eq!(
        metric(&client, &base, "seatgrid_http_requests_total", &other).await,
        1.0
    );
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("BREW"), "no label for a client's own method");
    for name in [
        "seatgrid_http_request_duration_seconds_bucket",
        "seatgrid_events_projected_total",
        "seatgrid_cache_requests_total",
        "seatgrid_aggregate_turn_wait_seconds_bucket",
        "seatgrid_clickhouse_batch_rows_bucket",
        "seatgrid_clickhouse_ingest_lag_ms",
    ] {
        assert!(text.contains(name), "{name} is exported");
    }
}
