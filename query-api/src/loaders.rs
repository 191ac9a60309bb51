//! DataLoaders: every list that resolves children (events with their availability, holds with
//! their events) loads them in one batch per request tick instead of one query per item.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_graphql::dataloader::Loader;
use domain::{EventDefinition, VenueLayout};
use projections::{ReadError, ReadModels, SeatMap};
use uuid::Uuid;

use crate::types::Event;

/// Seat maps by event id (cache first, then Postgres).
pub struct SeatMapLoader(pub ReadModels);

impl Loader<Uuid> for SeatMapLoader {
    type Value = SeatMap;
    type Error = Arc<ReadError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, SeatMap>, Self::Error> {
        self.0.seat_maps(keys).await.map_err(Arc::new)
    }
}

/// Ticketed events by id. Definitions never change once created, so their layouts are kept.
pub struct EventLoader {
    reads: ReadModels,
    known: RwLock<HashMap<Uuid, Event>>,
}

impl EventLoader {
    pub fn new(reads: ReadModels) -> Self {
        Self {
            reads,
            known: RwLock::default(),
        }
    }

    /// An [`Event`] from a definition, reusing the layout index when this event was seen before.
    pub fn event(&self, definition: EventDefinition) -> Option<Event> {
        let id = definition.event_id.0;
        if let Some(e) = self.known.read().expect("event cache lock").get(&id) {
            return Some(e.clone());
        }
        let layout = VenueLayout::new(definition.layout.clone()).ok()?;
        let event = Event {
            definition: Arc::new(definition),
            layout: Arc::new(layout),
        };
        let mut known = self.known.write().expect("event cache lock");
        if known.len() > 10_000 {
            known.clear();
        }
        known.insert(id, event.clone());
        Some(event)
    }
}

impl Loader<Uuid> for EventLoader {
    type Value = Event;
    type Error = Arc<ReadError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Event>, Self::Error> {
        let mut found = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        {
            let known = self.known.read().expect("event cache lock");
            for k in keys {
                match known.get(k) {
                    Some(e) => {
                        found.insert(*k, e.clone());
                    }
                    None => missing.push(*k),
                }
            }
        }
        if !missing.is_empty() {
            for (id, record) in self.reads.events(&missing).await.map_err(Arc::new)? {
                if let Some(e) = self.event(record.definition) {
                    found.insert(id, e);
                }
            }
        }
        Ok(found)
    }
}
