//! The ticketed event (the show): its name, date, venue layout and sale rules.
//!
//! Policy: a ticketed event is created once and its layout never changes afterwards, so seat ids
//! and seat blocks stay stable for the life of the sale. Hold length and the per-customer seat
//! limit are chosen per event within the caps of [`EventPolicy`].

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{CustomerId, EventId};
use crate::layout::{LayoutSpec, VenueLayout};
use crate::stored::names::{aggregate_type, event_type};
use crate::EVENT_SCHEMA_VERSION;

/// Defaults and caps for what organizers may choose per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPolicy {
    pub default_hold_seconds: u32,
    pub min_hold_seconds: u32,
    pub max_hold_seconds: u32,
    pub default_seats_per_customer: u32,
    pub max_seats_per_customer: u32,
    /// How long a buyer has to pay once an order is placed (its holds last until then, within
    /// `max_hold_seconds` of their placement).
    pub payment_window_seconds: u32,
}

impl Default for EventPolicy {
    fn default() -> Self {
        Self {
            default_hold_seconds: 600,
            min_hold_seconds: 10,
            max_hold_seconds: 3600,
            default_seats_per_customer: 10,
            max_seats_per_customer: 100,
            payment_window_seconds: 600,
        }
    }
}

/// An organizer's request to create a ticketed event, before validation.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub name: String,
    pub venue: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub currency: Option<String>,
    pub layout: LayoutSpec,
    pub hold_seconds: Option<u32>,
    pub max_seats_per_customer: Option<u32>,
    /// Who creates it (the organizer who manages it); `None` for events made by tools.
    pub organizer: Option<CustomerId>,
}

/// A valid ticketed event, as recorded in `EventCreated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDefinition {
    pub event_id: EventId,
    pub name: String,
    pub venue: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub currency: String,
    pub layout: LayoutSpec,
    pub hold_seconds: u32,
    pub max_seats_per_customer: u32,
    pub created_at: DateTime<Utc>,
    /// The organizer who created it and manages it (absent in events recorded before tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizer: Option<CustomerId>,
}

impl EventDefinition {
    pub const MAX_NAME_LEN: usize = 200;

    /// Checks a draft against the policy; all problems are reported together.
    pub fn validate(
        event_id: EventId,
        draft: NewEvent,
        policy: &EventPolicy,
        now: DateTime<Utc>,
    ) -> Result<(Self, VenueLayout), Vec<String>> {
        let mut problems = Vec::new();
        let name = draft.name.trim().to_owned();
        if name.is_empty() || name.len() > Self::MAX_NAME_LEN {
            problems.push(format!(
                "name must be 1 to {} characters",
                Self::MAX_NAME_LEN
            ));
        }
        let venue = draft
            .venue
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        if venue.as_ref().is_some_and(|v| v.len() > Self::MAX_NAME_LEN) {
            problems.push(format!(
                "venue must be at most {} characters",
                Self::MAX_NAME_LEN
            ));
        }
        let currency = draft.currency.unwrap_or_else(|| "EUR".into());
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
            problems.push(format!(
                "currency must be an ISO 4217 code such as \"EUR\", got {currency:?}"
            ));
        }
        let hold_seconds = draft.hold_seconds.unwrap_or(policy.default_hold_seconds);
        if !(policy.min_hold_seconds..=policy.max_hold_seconds).contains(&hold_seconds) {
            problems.push(format!(
                "hold_seconds must be between {} and {}",
                policy.min_hold_seconds, policy.max_hold_seconds
            ));
        }
        let max_seats_per_customer = draft
            .max_seats_per_customer
            .unwrap_or(policy.default_seats_per_customer);
        if !(1..=policy.max_seats_per_customer).contains(&max_seats_per_customer) {
            problems.push(format!(
                "max_seats_per_customer must be between 1 and {}",
                policy.max_seats_per_customer
            ));
        }
        let layout = match VenueLayout::new(draft.layout.clone()) {
            Ok(layout) => Some(layout),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        };
        match layout {
            Some(layout) if problems.is_empty() => Ok((
                Self {
                    event_id,
                    name,
                    venue,
                    starts_at: draft.starts_at,
                    currency,
                    layout: draft.layout,
                    hold_seconds,
                    max_seats_per_customer,
                    created_at: now,
                    organizer: draft.organizer,
                },
                layout,
            )),
            _ => Err(problems),
        }
    }
}

/// The ticketed event aggregate; its only job today is to exist once, with its definition.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct TicketedEvent {
    pub definition: Option<EventDefinition>,
}

#[derive(Debug, Clone)]
pub enum TicketedEventCommand {
    Create(EventDefinition),
}

/// Domain events of a ticketed event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TicketedEventEvent {
    EventCreated(EventDefinition),
}

impl DomainEvent for TicketedEventEvent {
    fn event_type(&self) -> String {
        match self {
            Self::EventCreated(_) => event_type::EVENT_CREATED.into(),
        }
    }
    fn event_version(&self) -> String {
        EVENT_SCHEMA_VERSION.into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketedEventError {
    #[error("event {0} already exists")]
    AlreadyCreated(EventId),
}

impl Aggregate for TicketedEvent {
    const TYPE: &'static str = aggregate_type::TICKETED_EVENT;
    type Command = TicketedEventCommand;
    type Event = TicketedEventEvent;
    type Error = TicketedEventError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            TicketedEventCommand::Create(definition) => {
                if let Some(existing) = &self.definition {
                    return Err(TicketedEventError::AlreadyCreated(existing.event_id));
                }
                sink.write(TicketedEventEvent::EventCreated(definition), self)
                    .await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            TicketedEventEvent::EventCreated(definition) => self.definition = Some(definition),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn draft() -> NewEvent {
        NewEvent {
            organizer: None,
            name: "Flash sale".into(),
            venue: Some("Arena".into()),
            starts_at: None,
            currency: None,
            layout: LayoutSpec::grid(10, 10, 5000).unwrap(),
            hold_seconds: None,
            max_seats_per_customer: None,
        }
    }

    fn definition() -> EventDefinition {
        EventDefinition::validate(
            EventId::new_random(),
            draft(),
            &EventPolicy::default(),
            Utc::now(),
        )
        .unwrap()
        .0
    }

    #[test]
    fn defaults_come_from_the_policy() {
        let d = definition();
        assert_eq!(d.hold_seconds, 600);
        assert_eq!(d.max_seats_per_customer, 10);
        assert_eq!(d.currency, "EUR");
    }

    #[test]
    fn choices_outside_the_caps_are_refused_together() {
        let mut bad = draft();
        bad.name = " ".into();
        bad.hold_seconds = Some(99_999);
        bad.max_seats_per_customer = Some(0);
        bad.currency = Some("euro".into());
        let problems = EventDefinition::validate(
            EventId::new_random(),
            bad,
            &EventPolicy::default(),
            Utc::now(),
        )
        .unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn given_nothing_when_created_then_event_created() {
        let d = definition();
        TestFramework::<TicketedEvent>::with(())
            .given_no_previous_events()
            .when(TicketedEventCommand::Create(d.clone()))
            .then_expect_events(vec![TicketedEventEvent::EventCreated(d)]);
    }

    #[test]
    fn given_created_when_created_again_then_refused() {
        let d = definition();
        TestFramework::<TicketedEvent>::with(())
            .given(vec![TicketedEventEvent::EventCreated(d.clone())])
            .when(TicketedEventCommand::Create(d.clone()))
            .then_expect_error(TicketedEventError::AlreadyCreated(d.event_id));
    }
}
