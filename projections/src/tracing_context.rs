//! Trace context carried in event metadata, so one trace follows a command from its HTTP request to
//! every projection that applies its events.
//!
//! Policy: the command side stores the W3C `traceparent` of the span that appended an event in the
//! event's metadata (`command_api::service::RequestContext`); each projection, once it has applied (and committed) an event,
//! records a short span whose parent is that context ([`applied`]). With no exporter configured
//! these are plain `tracing` spans and cost next to nothing.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::event_log::RecordedEvent;

/// Records that `projection` applied `events`: one span per event that carries a trace context.
pub fn applied(projection: &'static str, events: &[RecordedEvent]) {
    for event in events {
        let Some(fields) = event.metadata.as_object() else {
            continue;
        };
        if !fields.contains_key("traceparent") {
            continue;
        }
        let carrier: HashMap<String, String> = fields
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
            .collect();
        let parent = TraceContextPropagator::new().extract(&carrier);
        let span = tracing::info_span!(
            "projection.apply",
            projection,
            event_type = %event.event_type,
            aggregate_id = %event.aggregate_id,
            position = event.global.position,
        );
        let _ = span.set_parent(parent);
    }
}
