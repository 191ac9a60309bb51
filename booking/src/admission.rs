//! Admission control for holds, per event.
//!
//! Policy:
//! - At most [`HOLDS_IN_FLIGHT_PER_EVENT`] holds of one event are being decided at once in this
//!   process; one more is answered at once with `Busy` (429 and `Retry-After`), not queued. With
//!   each seat block's writer queue bounded too ([`crate::writers::QUEUE`]), what one sale can pile
//!   up in memory is bounded whatever the number of connections, and a buyer who is turned away
//!   learns it in microseconds instead of after a long wait.
//! - The count is taken when the hold's checks pass and given back when it is answered (a guard,
//!   so a caller that leaves gives it back too).

use std::collections::HashMap;
use std::sync::Mutex;

use domain::EventId;

use crate::error::CommandError;

/// Holds of one event being decided at once in one process, at most.
pub const HOLDS_IN_FLIGHT_PER_EVENT: usize = 4_096;

/// The holds in flight, by event.
#[derive(Debug)]
pub struct Admission {
    limit: usize,
    in_flight: Mutex<HashMap<EventId, usize>>,
}

impl Default for Admission {
    fn default() -> Self {
        Self::with_limit(HOLDS_IN_FLIGHT_PER_EVENT)
    }
}

/// One admitted hold; dropping it gives its place back.
#[derive(Debug)]
pub struct Admitted<'a> {
    admission: &'a Admission,
    event: EventId,
}

impl Admission {
    pub fn with_limit(limit: usize) -> Self {
        Self {
            limit,
            in_flight: Mutex::default(),
        }
    }

    /// A place for one more hold of `event`, or `Busy` when it has `limit` in flight.
    pub fn enter(&self, event: EventId) -> Result<Admitted<'_>, CommandError> {
        let mut in_flight = self.in_flight.lock().expect("admission lock");
        let n = in_flight.entry(event).or_default();
        if *n >= self.limit {
            metrics::counter!("seatgrid_holds_not_admitted_total").increment(1);
            return Err(CommandError::Busy);
        }
        *n += 1;
        Ok(Admitted {
            admission: self,
            event,
        })
    }

    /// Holds of `event` in flight now.
    pub fn in_flight(&self, event: EventId) -> usize {
        let in_flight = self.in_flight.lock().expect("admission lock");
        in_flight.get(&event).copied().unwrap_or(0)
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.admission.in_flight.lock().expect("admission lock");
        if let Some(n) = in_flight.get_mut(&self.event) {
            *n -= 1;
            if *n == 0 {
                in_flight.remove(&self.event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_an_event_has_its_limit_in_flight_then_one_more_is_busy_until_one_ends() {
        let admission = Admission::with_limit(2);
        let (e, other) = (
            EventId(uuid::Uuid::from_u128(1)),
            EventId(uuid::Uuid::from_u128(2)),
        );
        let first = admission.enter(e).unwrap();
        let _second = admission.enter(e).unwrap();
        assert_eq!(admission.enter(e).unwrap_err().code(), "busy");
        // Another event is not affected.
        let _elsewhere = admission.enter(other).unwrap();
        drop(first);
        assert!(admission.enter(e).is_ok());
    }

    #[test]
    fn when_every_hold_ended_then_the_event_is_forgotten() {
        let admission = Admission::with_limit(2);
        let e = EventId(uuid::Uuid::from_u128(1));
        drop(admission.enter(e).unwrap());
        assert_eq!(admission.in_flight(e), 0);
        assert!(admission.in_flight.lock().unwrap().is_empty());
    }
}
