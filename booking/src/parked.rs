//! States of writers that stopped, kept for the writer of the same aggregate that starts next.
//!
//! Policy: a writer that stops when idle parks its committed state here, and the next writer of
//! that aggregate starts from it instead of reading the store (or, for allowances, instead of
//! assuming a new aggregate and losing its first append to the stored one: a buyer who comes back
//! after the writer stopped). A parked state may be stale, like any state in memory: the append's
//! expected version catches that (the writer reloads and decides again), and answers from memory
//! are checked against the stored version as before. At most `capacity` states are kept; the one
//! parked longest ago goes first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use std::sync::Arc;

use cqrs_es::Aggregate;

/// The state a writer last committed (or loaded), with its version.
pub struct Committed<A> {
    pub state: Arc<A>,
    pub version: usize,
}

impl<A> Clone for Committed<A> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            version: self.version,
        }
    }
}

pub(crate) struct Parked<A: Aggregate> {
    capacity: usize,
    inner: Mutex<Inner<A>>,
}

struct Inner<A: Aggregate> {
    /// By aggregate id: the state and the stamp it was parked with.
    states: HashMap<String, (u64, Committed<A>)>,
    /// Parking order; entries whose stamp no longer matches were taken or parked again.
    order: VecDeque<(u64, String)>,
    next: u64,
}

impl<A: Aggregate> Parked<A> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner {
                states: HashMap::new(),
                order: VecDeque::new(),
                next: 0,
            }),
        }
    }

    pub(crate) fn park(&self, id: &str, state: Committed<A>) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock().expect("parked lock");
        let stamp = inner.next;
        inner.next += 1;
        inner.states.insert(id.to_owned(), (stamp, state));
        inner.order.push_back((stamp, id.to_owned()));
        while inner.states.len() > self.capacity {
            let Some((stamp, id)) = inner.order.pop_front() else {
                break;
            };
            if inner.states.get(&id).is_some_and(|(s, _)| *s == stamp) {
                inner.states.remove(&id);
            }
        }
        // Entries of states taken since: dropped once they outnumber the kept ones.
        if inner.order.len() > 2 * self.capacity + 16 {
            let Inner { states, order, .. } = &mut *inner;
            order.retain(|(stamp, id)| states.get(id).is_some_and(|(s, _)| s == stamp));
        }
    }

    pub(crate) fn take(&self, id: &str) -> Option<Committed<A>> {
        let mut inner = self.inner.lock().expect("parked lock");
        inner.states.remove(id).map(|(_, state)| state)
    }

    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        let inner = self.inner.lock().expect("parked lock");
        (inner.states.len(), inner.order.len())
    }
}

#[cfg(test)]
mod tests {
    use domain::SeatBlock;

    use super::*;

    fn state(version: usize) -> Committed<SeatBlock> {
        Committed {
            state: Arc::new(SeatBlock::default()),
            version,
        }
    }

    #[test]
    fn given_parked_states_when_taken_then_each_once_and_the_oldest_go_past_capacity() {
        let parked = Parked::new(2);
        parked.park("a", state(1));
        parked.park("b", state(2));
        parked.park("a", state(3));
        parked.park("c", state(4));
        // "b" was parked longest ago; "a" again after it.
        assert!(parked.take("b").is_none());
        assert_eq!(parked.take("a").map(|c| c.version), Some(3));
        assert!(parked.take("a").is_none());
        assert_eq!(parked.take("c").map(|c| c.version), Some(4));
    }

    #[test]
    fn given_many_park_and_take_cycles_then_memory_stays_bounded() {
        let parked = Parked::new(4);
        for i in 0..1_000 {
            let id = format!("id{}", i % 10);
            parked.park(&id, state(i));
            parked.take(&id);
        }
        let (states, order) = parked.len();
        assert_eq!(states, 0);
        assert!(order <= 2 * 4 + 16 + 1, "{order}");
    }
}
