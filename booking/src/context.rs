//! Who asked, as every command carries it: a correlation id for the stored events' metadata, and
//! where new ids come from.
//!
//! Policy: with an id seed (an idempotency key's run), new ids are derived from the seed, so a
//! request re-run after a crash lands on the same aggregates and changes nothing; without one they
//! are random. The current trace context travels in each event's metadata (`traceparent`), so the
//! projections continue the command's trace.

use std::collections::HashMap;

use domain::CustomerId;
use uuid::Uuid;

/// Who asked, for the event metadata and for deriving ids from an idempotency key.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub correlation_id: String,
    /// Where new ids come from: `Some(seed)` derives the same ids for the same seed (an idempotent
    /// request re-run after a crash), `None` picks random ones.
    pub id_seed: Option<String>,
}

/// The namespace of ids derived from idempotency seeds.
const NAMESPACE: Uuid = Uuid::from_u128(0x5ea7_9e1d_0000_4000_8000_0000_0000_0001);

impl RequestContext {
    /// The metadata stored with each event the command appends.
    pub fn metadata(
        &self,
        command: &str,
        customer: Option<&CustomerId>,
    ) -> HashMap<String, String> {
        let mut m = HashMap::from([
            ("command".to_owned(), command.to_owned()),
            ("correlation_id".to_owned(), self.correlation_id.clone()),
        ]);
        if let Some(c) = customer {
            m.insert("customer_id".into(), c.to_string());
        }
        // The W3C trace context, so projections can continue this trace (`traceparent`).
        let context =
            tracing_opentelemetry::OpenTelemetrySpanExt::context(&tracing::Span::current());
        opentelemetry::propagation::TextMapPropagator::inject_context(
            &opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            &context,
            &mut m,
        );
        m
    }

    /// A new id, or the same id every time for the same seed and `kind`.
    pub fn new_id(&self, kind: &str) -> Uuid {
        match &self.id_seed {
            Some(key) => Uuid::new_v5(&NAMESPACE, format!("{kind}\n{key}").as_bytes()),
            None => Uuid::new_v4(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_derives_the_same_id_per_kind_and_no_seed_a_fresh_one() {
        let seeded = RequestContext {
            correlation_id: "c".into(),
            id_seed: Some("key\n1".into()),
        };
        assert_eq!(seeded.new_id("hold"), seeded.new_id("hold"));
        assert_ne!(seeded.new_id("hold"), seeded.new_id("event"));
        let random = RequestContext::default();
        assert_ne!(random.new_id("hold"), random.new_id("hold"));
    }

    #[test]
    fn metadata_names_the_command_and_the_customer() {
        let ctx = RequestContext {
            correlation_id: "req-1".into(),
            id_seed: None,
        };
        let customer = CustomerId::parse("alice").unwrap();
        let meta = ctx.metadata("HoldSeats", Some(&customer));
        assert_eq!(meta["command"], "HoldSeats");
        assert_eq!(meta["correlation_id"], "req-1");
        assert_eq!(meta["customer_id"], "alice");
    }
}
