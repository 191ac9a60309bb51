//! Trace context carried in event metadata, so one trace follows a command from its HTTP request to
//! every projection that applies its events.
//!
//! Policy: the command side stores the W3C `traceparent` of the span that appended an event in
//! the event's metadata (`booking::RequestContext`); each projection, once it has
//! applied (and committed) an event, records a short span whose parent is that context
//! ([`applied`]; a projection that commits in batches later than it reads keeps each event's
//! [`TraceLink`] until then). With no exporter configured these are plain `tracing` spans and cost
//! next to nothing.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::event_log::RecordedEvent;

/// Records that `projection` applied `events`: one span per event that carries a trace context.
pub fn applied(projection: &'static str, events: &[RecordedEvent]) {
    for link in events.iter().filter_map(TraceLink::of) {
        link.applied(projection);
    }
}

/// The trace context of one event, kept by a projection that commits later than it reads (the
/// ClickHouse stream batches events for up to a second) until it has committed the event.
#[derive(Debug, Clone)]
pub struct TraceLink {
    carrier: HashMap<String, String>,
    event_type: String,
    aggregate_id: String,
    position: i64,
}

impl TraceLink {
    /// The event's trace context; `None` when its metadata carries none (no exporter configured).
    pub fn of(event: &RecordedEvent) -> Option<Self> {
        // Most events carry none: a look at the text before any parsing.
        let text = event.metadata.get();
        if !text.contains("\"traceparent\"") {
            return None;
        }
        let fields: HashMap<String, serde_json::Value> = serde_json::from_str(text).ok()?;
        let carrier = fields
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(v) => Some((k, v)),
                _ => None,
            })
            .collect();
        Some(Self {
            carrier,
            event_type: event.event_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            position: event.global.position,
        })
    }

    /// Records the span of `projection` having applied (and committed) this event.
    pub fn applied(&self, projection: &'static str) {
        let parent = TraceContextPropagator::new().extract(&self.carrier);
        let span = tracing::info_span!(
            "projection.apply",
            projection,
            event_type = %self.event_type,
            aggregate_id = %self.aggregate_id,
            position = self.position,
        );
        let _ = span.set_parent(parent);
    }
}
