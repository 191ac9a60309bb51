//! A ticketed event with its layout index, and the one in-memory catalog of them that every layer
//! (commands, GraphQL, analytics) keeps.
//!
//! Policy: an event's definition never changes once created, so a [`KnownEvent`] never goes stale
//! and may be kept for the life of the process. The [`EventCatalog`] is bounded: past its capacity
//! the least recently used event is forgotten (and loaded again when next needed). It does no I/O:
//! callers load a definition their own way and [`EventCatalog::insert`] it.
//!
//! Every command looks its event up here, so a lookup takes only a shared lock: recency is an
//! atomic stamp, and only an insert takes the lock exclusively.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::ids::{EventId, SeatBlockId, SeatId};
use crate::layout::{LayoutError, SeatLabel, VenueLayout};
use crate::ticketed_event::EventDefinition;

/// A ticketed event as kept in memory: its definition and its layout index.
#[derive(Debug)]
pub struct KnownEvent {
    pub definition: EventDefinition,
    pub layout: VenueLayout,
}

impl KnownEvent {
    pub fn new(definition: EventDefinition) -> Result<Self, LayoutError> {
        let layout = VenueLayout::new(definition.layout.clone())?;
        Ok(Self { definition, layout })
    }

    pub fn event_id(&self) -> EventId {
        self.definition.event_id
    }

    /// Labels of the given seats, in the same order (unknown seat ids are left out).
    pub fn labels(&self, seats: &[SeatId]) -> Vec<SeatLabel> {
        seats.iter().filter_map(|s| self.layout.label(*s)).collect()
    }

    /// The aggregate id of seat block `index`.
    pub fn block_id(&self, index: u32) -> String {
        SeatBlockId {
            event_id: self.definition.event_id,
            index,
        }
        .aggregate_id()
    }

    /// Seats grouped by block, blocks in ascending order.
    pub fn by_block(&self, seats: &[SeatId]) -> BTreeMap<u32, Vec<SeatId>> {
        let mut blocks: BTreeMap<u32, Vec<SeatId>> = BTreeMap::new();
        for seat in seats {
            if let Some(b) = self.layout.block_of(*seat) {
                blocks.entry(b).or_default().push(*seat);
            }
        }
        blocks
    }
}

/// A bounded map of known events, least recently used forgotten first.
#[derive(Debug)]
pub struct EventCatalog {
    capacity: usize,
    /// Stamps recency: each lookup or insert takes the next value.
    clock: AtomicU64,
    events: RwLock<HashMap<EventId, (Arc<KnownEvent>, AtomicU64)>>,
}

impl EventCatalog {
    /// Events kept by default: far more than one process sells at once.
    pub const DEFAULT_CAPACITY: usize = 10_000;

    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            clock: AtomicU64::new(0),
            events: RwLock::default(),
        }
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn get(&self, event_id: EventId) -> Option<Arc<KnownEvent>> {
        let events = self.events.read().expect("catalog lock");
        let (event, used) = events.get(&event_id)?;
        used.store(self.tick(), Ordering::Relaxed);
        Some(event.clone())
    }

    /// Keeps `definition` (or returns the copy already kept); `None` if its layout is invalid.
    pub fn insert(&self, definition: EventDefinition) -> Option<Arc<KnownEvent>> {
        if let Some(known) = self.get(definition.event_id) {
            return Some(known);
        }
        Some(self.keep(KnownEvent::new(definition).ok()?))
    }

    /// Keeps an event whose layout is already indexed (or returns the copy already kept).
    pub fn keep(&self, known: KnownEvent) -> Arc<KnownEvent> {
        let mut events = self.events.write().expect("catalog lock");
        if let Some((kept, _)) = events.get(&known.event_id()) {
            return kept.clone();
        }
        if events.len() >= self.capacity {
            let oldest = events
                .iter()
                .min_by_key(|(_, (_, used))| used.load(Ordering::Relaxed))
                .map(|(id, _)| *id);
            if let Some(id) = oldest {
                events.remove(&id);
            }
        }
        let known = Arc::new(known);
        let used = AtomicU64::new(self.tick());
        events.insert(known.event_id(), (known.clone(), used));
        known
    }

    pub fn len(&self) -> usize {
        self.events.read().expect("catalog lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for EventCatalog {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::{EventPolicy, LayoutSpec, NewEvent};

    fn definition(n: u128) -> EventDefinition {
        let draft = NewEvent {
            organizer: None,
            name: format!("show {n}"),
            venue: None,
            starts_at: None,
            currency: None,
            layout: LayoutSpec::grid(2, 3, 100).unwrap(),
            hold_seconds: None,
            max_seats_per_customer: None,
        };
        EventDefinition::validate(
            EventId(uuid::Uuid::from_u128(n)),
            draft,
            &EventPolicy::default(),
            Utc::now(),
        )
        .unwrap()
        .0
    }

    #[test]
    fn given_a_full_catalog_when_another_event_comes_then_the_least_recently_used_goes() {
        let catalog = EventCatalog::new(2);
        catalog.insert(definition(1));
        catalog.insert(definition(2));
        catalog.get(EventId(uuid::Uuid::from_u128(1)));
        catalog.insert(definition(3));
        assert_eq!(catalog.len(), 2);
        assert!(catalog.get(EventId(uuid::Uuid::from_u128(1))).is_some());
        assert!(catalog.get(EventId(uuid::Uuid::from_u128(2))).is_none());
    }

    #[test]
    fn given_a_known_event_then_seats_group_by_block_in_order() {
        let known = KnownEvent::new(definition(1)).unwrap();
        let blocks = known.by_block(&[SeatId(4), SeatId(0), SeatId(1)]);
        let all: Vec<SeatId> = blocks.values().flatten().copied().collect();
        assert_eq!(all.len(), 3);
        assert_eq!(known.labels(&[SeatId(0), SeatId(99)]).len(), 1);
        assert!(known.block_id(0).starts_with(&known.event_id().to_string()));
    }
}
