//! One writer batch's decisions: each queued command decided in order on the writer's state, and
//! the rows that record them (see the policy of [`crate::writers`]: decisions on the state itself,
//! events numbered from the version held, a snapshot when the batch crosses the cadence).

use std::collections::HashMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde_json::value::to_raw_value;

use crate::group_commit::{Append, EventRow, SnapshotRow};
use crate::persistence::snapshot_index;

/// What a batch's decisions come to: the state after them, the append that records them, and
/// each command's answer (in order).
pub(crate) type Decided<A> = (A, Append, Vec<Result<(), <A as Aggregate>::Error>>);

/// Decides each command in order on `state`; a refused one leaves the state as it was.
pub(crate) async fn decide<'a, A>(
    id: &str,
    mut state: A,
    version: usize,
    commands: impl Iterator<Item = (&'a A::Command, &'a HashMap<String, String>)>,
) -> Result<Decided<A>, WroteThenRefused>
where
    A: Aggregate<Services = ()> + Clone,
    A::Command: Clone + 'a,
{
    let mut append = Append::default();
    let mut decisions = Vec::new();
    for (command, metadata) in commands {
        let sink = EventSink::default();
        let decided = state.handle(command.clone(), &(), &sink).await;
        let events = sink.collect().await;
        match decided {
            Ok(()) => {
                let metadata = to_raw_value(metadata).expect("metadata serializes");
                for event in events {
                    append.events.push(EventRow {
                        aggregate_type: A::TYPE.to_owned(),
                        aggregate_id: id.to_owned(),
                        sequence: (version + append.events.len() + 1) as i64,
                        event_type: event.event_type(),
                        event_version: event.event_version(),
                        payload: to_raw_value(&event).expect("events serialize"),
                        metadata: metadata.clone(),
                    });
                }
                decisions.push(Ok(()));
            }
            Err(e) if events.is_empty() => decisions.push(Err(e)),
            // Wrote, then refused: the state holds events nobody will commit.
            Err(_) => return Err(WroteThenRefused),
        }
    }
    let new_version = version + append.events.len();
    let snapshots = snapshot_index(id, new_version);
    if snapshots > snapshot_index(id, version) {
        append.snapshot = Some(SnapshotRow {
            aggregate_type: A::TYPE.to_owned(),
            aggregate_id: id.to_owned(),
            last_sequence: new_version as i64,
            current_snapshot: snapshots as i64,
            payload: to_raw_value(&state).expect("state serializes"),
        });
    }
    Ok((state, append, decisions))
}

/// A decision that wrote events and then refused (see the policy of [`crate::writers`]).
#[derive(Debug)]
pub(crate) struct WroteThenRefused;
