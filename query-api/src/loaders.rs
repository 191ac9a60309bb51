//! DataLoaders: every list that resolves children (events with their availability, holds with
//! their events) loads them in one batch per request tick instead of one query per item.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use domain::{EventCatalog, EventDefinition, EventId, KnownEvent};
use projections::{ReadError, ReadModels, SeatMap};
use uuid::Uuid;

/// Seat maps by event id (cache first, then Postgres).
pub struct SeatMapLoader(pub ReadModels);

impl Loader<Uuid> for SeatMapLoader {
    type Value = SeatMap;
    type Error = Arc<ReadError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, SeatMap>, Self::Error> {
        self.0.seat_maps(keys).await.map_err(Arc::new)
    }
}

/// Ticketed events by id, kept in the process's [`EventCatalog`] (definitions never change).
pub struct EventLoader {
    reads: ReadModels,
    catalog: Arc<EventCatalog>,
}

impl EventLoader {
    pub fn new(reads: ReadModels, catalog: Arc<EventCatalog>) -> Self {
        Self { reads, catalog }
    }

    /// A known event from a definition, reusing the layout index when this event was seen before.
    pub fn event(&self, definition: EventDefinition) -> Option<Arc<KnownEvent>> {
        self.catalog.insert(definition)
    }
}

impl Loader<Uuid> for EventLoader {
    type Value = Arc<KnownEvent>;
    type Error = Arc<ReadError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Arc<KnownEvent>>, Self::Error> {
        let mut found = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        for k in keys {
            match self.catalog.get(EventId(*k)) {
                Some(e) => {
                    found.insert(*k, e);
                }
                None => missing.push(*k),
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
