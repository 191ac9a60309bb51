//! One writer batch: each queued command decided in order on the writer's state, the rows that
//! record them, their commit (with the appends linked to them, [`crate::linked`]) and the
//! answers (see the policy of [`crate::writers`]: decisions on the state itself, events numbered
//! from the version held, a snapshot when the batch crosses the cadence).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde_json::value::to_raw_value;
use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::group_commit::{Append, EventRow, GroupCommit, SnapshotRow};
use crate::linked::{Link, RideOutcome, Rider};
use crate::parked::Committed;
use crate::persistence::{
    load_with_version, snapshot_index, stored_version, LoadError, StoreError,
};

/// What a batch's decisions come to: the state after them, the append that records them, and
/// each command's answer (in order): the number of events it wrote, or its refusal.
pub(crate) type Decided<A> = (A, Append, Vec<Result<usize, <A as Aggregate>::Error>>);

pub(crate) type Answer<A> = Result<(), StoreError<<A as Aggregate>::Error>>;

/// One queued command and who to answer.
pub(crate) struct Job<A: Aggregate> {
    pub(crate) command: A::Command,
    pub(crate) metadata: HashMap<String, String>,
    pub(crate) reply: oneshot::Sender<Answer<A>>,
    pub(crate) link: Link,
}

/// What one batch needs of its writer.
pub(crate) struct BatchEnv<A> {
    pub(crate) id: String,
    pub(crate) pool: PgPool,
    pub(crate) commit: Arc<GroupCommit>,
    pub(crate) attempts: u32,
    /// No state in memory means a new aggregate (once; see `ColdStart::AssumeNew`).
    pub(crate) assume_new: bool,
    /// The writer's committed state, set before callers are answered (an answered change is never
    /// missing from what readers see); `None` when unknown.
    pub(crate) committed: Arc<Mutex<Option<Committed<A>>>>,
}

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
                let written = events.len();
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
                decisions.push(Ok(written));
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

/// Decides and commits one batch, answers every job (and every rider it carries), and leaves the
/// state to keep in `committed` (none when it is unknown).
pub(crate) async fn run_batch<A>(env: BatchEnv<A>, mut batch: Vec<Job<A>>)
where
    A: Aggregate<Services = ()> + Clone + 'static,
    A::Command: Clone + Send + Sync + 'static,
    A::Error: Send + 'static,
{
    let BatchEnv {
        id,
        pool,
        commit,
        attempts,
        mut assume_new,
        committed,
    } = env;
    let publish = |state: Option<(A, usize)>| {
        *committed.lock().expect("committed lock") = state.map(|(state, version)| Committed {
            state: Arc::new(state),
            version,
        });
    };
    // The state before the batch: decided on a copy (readers keep theirs), and again after a
    // lost rider without reading it. `None` after a conflict or a later stored version: read.
    let mut base = committed.lock().expect("committed lock").clone();
    for attempt in 1..=attempts {
        let (current, version) = match &base {
            Some(c) => (A::clone(&c.state), c.version),
            None => {
                let loaded = match std::mem::take(&mut assume_new) {
                    true => Ok((A::default(), 0)),
                    false => load_with_version::<A>(&pool, &id).await,
                };
                match loaded {
                    Ok((state, version)) => {
                        base = Some(Committed {
                            state: Arc::new(state.clone()),
                            version,
                        });
                        (state, version)
                    }
                    Err(e) => {
                        let corrupt = matches!(e, LoadError::Corrupt(..));
                        let cause = e.to_string();
                        publish(None);
                        answer_all(batch, RideOutcome::Cancelled, || match corrupt {
                            true => StoreError::Corrupt(cause.clone()),
                            false => StoreError::Unavailable(cause.clone()),
                        });
                        return;
                    }
                }
            }
        };
        let commands = batch.iter().map(|j| (&j.command, &j.metadata));
        let Ok((next, append, decisions)) = decide(&id, current, version, commands).await else {
            tracing::error!(aggregate = A::TYPE, %id, "a decision wrote events and then refused; its batch fails");
            publish(None);
            answer_all(batch, RideOutcome::Cancelled, || {
                StoreError::Unavailable("a decision wrote events and then refused".into())
            });
            return;
        };
        let new_version = version + append.events.len();
        if append.events.is_empty() {
            // Nothing to write: every answer comes from memory, which is only as good as its
            // version. Another process may have written since (freed a seat, closed a hold): one
            // index lookup says; if so, reload and decide again.
            match stored_version(&pool, A::TYPE, &id).await {
                Ok(stored) if stored == version => {
                    publish(Some((next, version)));
                    answer(batch, decisions);
                    return;
                }
                Ok(_) => {
                    metrics::counter!("seatgrid_writer_stale_total", "aggregate" => A::TYPE)
                        .increment(1);
                    base = None;
                    continue;
                }
                Err(e) => {
                    publish(None);
                    answer_all(batch, RideOutcome::Cancelled, || {
                        StoreError::Unavailable(e.to_string())
                    });
                    return;
                }
            }
        }
        fail::fail_point!("writer.before_commit");
        if batch.len() == 1 && batch[0].link.rides() {
            let reload = load_with_version::<A>(&pool, &id);
            ride(
                batch,
                append,
                (next, new_version),
                decisions,
                publish,
                reload,
            )
            .await;
            return;
        }
        // The riders of the commands that wrote events commit with them, all or none.
        let mut unit = vec![append];
        let mut riding = Vec::new();
        for (i, (job, decision)) in batch.iter().zip(&decisions).enumerate() {
            if let (Link::Carries(rider), Ok(1..)) = (&job.link, decision) {
                unit.push(rider.append.clone());
                riding.push(i);
            }
        }
        match commit.append_unit(unit).await {
            Ok(lost) if !lost.contains(&true) => {
                publish(Some((next, new_version)));
                for &i in &riding {
                    if let Some(rider) = batch[i].link.take_rider() {
                        rider.finish(RideOutcome::Committed);
                    }
                }
                answer(batch, decisions);
                return;
            }
            Ok(lost) => {
                metrics::counter!("seatgrid_optimistic_conflicts_total", "aggregate" => A::TYPE)
                    .increment(1);
                tracing::debug!(aggregate = A::TYPE, %id, attempt, "a version was taken first; deciding again");
                // A command whose rider lost is answered now (its caller may try again); the
                // others are decided again, from the state before the batch unless ours lost.
                let gone: HashSet<usize> = riding
                    .iter()
                    .zip(&lost[1..])
                    .filter_map(|(i, lost)| lost.then_some(*i))
                    .collect();
                let mut kept = Vec::with_capacity(batch.len());
                for (i, mut job) in batch.into_iter().enumerate() {
                    match gone.contains(&i) {
                        true => {
                            if let Some(rider) = job.link.take_rider() {
                                rider.finish(RideOutcome::Lost);
                            }
                            let _ = job.reply.send(Err(StoreError::Contention(1)));
                        }
                        false => kept.push(job),
                    }
                }
                batch = kept;
                if lost[0] {
                    base = None;
                }
                if batch.is_empty() {
                    if lost[0] {
                        publish(None);
                    }
                    return;
                }
            }
            Err(e) => {
                let cause = e.to_string();
                publish(None);
                for &i in &riding {
                    if let Some(rider) = batch[i].link.take_rider() {
                        rider.finish(RideOutcome::Unknown(cause.clone()));
                    }
                }
                answer_all(batch, RideOutcome::Cancelled, || {
                    StoreError::Unavailable(cause.clone())
                });
                return;
            }
        }
    }
    metrics::counter!("seatgrid_command_contention_total", "aggregate" => A::TYPE).increment(1);
    publish(None);
    answer_all(batch, RideOutcome::Cancelled, || {
        StoreError::Contention(attempts)
    });
}

/// A riding command (alone in its batch) hands its append over and answers as it ends.
/// `reload` reads the aggregate (run only if the rider lost).
async fn ride<A: Aggregate>(
    mut batch: Vec<Job<A>>,
    append: Append,
    next: (A, usize),
    decisions: Vec<Result<usize, A::Error>>,
    publish: impl Fn(Option<(A, usize)>),
    reload: impl std::future::Future<Output = Result<(A, usize), LoadError>>,
) {
    let Link::Rides(channel) = std::mem::take(&mut batch[0].link) else {
        unreachable!("a riding batch")
    };
    let (rider, outcome) = Rider::new(append);
    if let Err(rider) = channel.send(rider) {
        // Nobody to carry it (the caller went away): nothing is written.
        rider.finish(RideOutcome::Cancelled);
    }
    let outcome = outcome
        .await
        .unwrap_or_else(|_| RideOutcome::Unknown("the rider was lost".into()));
    match outcome {
        RideOutcome::Committed => {
            publish(Some(next));
            answer(batch, decisions);
        }
        // Nothing written: the state in memory is still the committed one.
        RideOutcome::Cancelled => answer_all(batch, RideOutcome::Cancelled, || {
            StoreError::Unavailable(
                "not written: the command it was linked to wrote nothing".into(),
            )
        }),
        RideOutcome::Lost => {
            // Read now: a writer without a state would assume the aggregate new again, and lose
            // again, when its caller tries again.
            metrics::counter!("seatgrid_optimistic_conflicts_total", "aggregate" => A::TYPE)
                .increment(1);
            publish(reload.await.ok());
            answer_all(batch, RideOutcome::Cancelled, || StoreError::Contention(1));
        }
        RideOutcome::Unknown(cause) => {
            publish(None);
            answer_all(batch, RideOutcome::Cancelled, || {
                StoreError::Unavailable(cause.clone())
            });
        }
    }
}

/// Answers each job with its decision; a rider still carried was not written.
fn answer<A: Aggregate>(batch: Vec<Job<A>>, decisions: Vec<Result<usize, A::Error>>) {
    for (mut job, decision) in batch.into_iter().zip(decisions) {
        if let Some(rider) = job.link.take_rider() {
            rider.finish(RideOutcome::Cancelled);
        }
        let _ = job
            .reply
            .send(decision.map(|_| ()).map_err(StoreError::Rejected));
    }
}

/// Answers every job with `error`, and every rider still carried with `outcome`.
fn answer_all<A: Aggregate>(
    batch: Vec<Job<A>>,
    outcome: RideOutcome,
    error: impl Fn() -> StoreError<A::Error>,
) {
    for mut job in batch {
        if let Some(rider) = job.link.take_rider() {
            rider.finish(outcome.clone());
        }
        let _ = job.reply.send(Err(error()));
    }
}
