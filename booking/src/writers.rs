//! One writer per aggregate (seat block, customer allowance) inside a process: the aggregate's
//! state kept in memory, its queued commands decided in order, their events group-committed.
//!
//! Policy:
//! - A writer is a task that owns one aggregate's state and version. It is started by the first
//!   command for the aggregate (loading the snapshot and the events after it) and stops when idle
//!   ([`BLOCK_IDLE`] for seat blocks, which a sale keeps busy; [`ALLOWANCE_IDLE`] for allowances,
//!   which a flash-sale buyer uses once), so memory follows the aggregates in use, not all there
//!   are. A stopped writer's state is parked, bounded, for the next start ([`crate::parked`]).
//! - It takes every command queued at that moment (up to [`MAX_JOBS`]), decides each against the
//!   state left by the ones before it, and hands
//!   all their events to the group commit ([`crate::group_commit`]) as one append numbered from
//!   the version it holds. Every caller is answered after that commit is durable (a successful
//!   append also proves the state it was decided on was the latest). A batch whose commands were
//!   all refused or changed nothing writes nothing; it is answered from memory after one index
//!   lookup confirms no other process wrote the aggregate since (else it reloads and decides
//!   again), so a refusal or a no-op is never judged on a stale state.
//! - Decisions are made on the state itself, not a copy: an aggregate decides before it writes
//!   (the cqrs-es convention), so a refused command leaves the state as it was. One that wrote
//!   events and then refused makes its whole batch fail with an error (never a wrong answer) and
//!   the writer reloads.
//! - Each event keeps the metadata of the command that caused it (cqrs-es' `commit` takes one
//!   metadata map for all events; the rows it writes are otherwise the same, see
//!   [`crate::group_commit`]).
//! - Another process writing the same aggregate is caught by the version: the append conflicts,
//!   the writer reloads and decides the batch again, up to [`RetryPolicy::max_attempts`] times,
//!   then answers `Contention`. A failed or unknown commit drops the state from memory; the next
//!   batch reloads it. A command is decided with the `now` it was built with (when it was queued,
//!   milliseconds before).
//! - A writer that panics answers its batch with an error (never a success) and starts again from
//!   the store; the commands queued behind the batch are decided by the restarted writer.
//! - A command may be linked to another writer's ([`crate::linked`]): a riding one (a hold's
//!   allowance reservation) is decided alone and its events are handed over instead of
//!   committed; a carrying one (the hold's first seat block) commits them with its own.
//! - Admission control: a writer's queue holds at most [`QUEUE`] commands; one more is refused at
//!   once with [`StoreError::Busy`] (429 with `Retry-After`), instead of a long wait.
//! - The committed state in memory ([`Writers::committed`]) answers the early refusal of a hold
//!   ([`crate::place_hold`]) with the same check: a seat it shows taken is refused only once the
//!   stored version matches; a seat it shows free costs nothing (the append would catch it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cqrs_es::Aggregate;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use crate::group_commit::GroupCommit;
use crate::linked::{Link, RideOutcome, Rider};
pub use crate::parked::Committed;
use crate::parked::Parked;
use crate::persistence::{RetryPolicy, StoreError};
use crate::writer_batch::{run_batch, Answer, BatchEnv, Job};

/// Commands waiting for one aggregate's writer; more are refused with `Busy`.
pub const QUEUE: usize = 512;
/// Most commands decided and appended together.
pub const MAX_JOBS: usize = 256;
/// A seat block's writer without commands for this long stops (its state is parked).
pub const BLOCK_IDLE: Duration = Duration::from_secs(60);
/// The same for a customer allowance's writer.
pub const ALLOWANCE_IDLE: Duration = Duration::from_secs(2);
/// States of stopped seat-block writers kept for their next start ([`crate::parked`]).
pub const BLOCKS_PARKED: usize = 2_000;
/// The same for allowances (a buyer coming back for more seats).
pub const ALLOWANCES_PARKED: usize = 20_000;

/// The writers running, by aggregate id.
type Running<A> = Mutex<HashMap<String, Handle<A>>>;

/// One writer's committed state as it changes: empty once that writer stopped or lost its state
/// (then ask [`Writers::committed_cell`] again: another writer may run by now).
pub struct CommittedCell<A>(Arc<Mutex<Option<Committed<A>>>>);

impl<A> CommittedCell<A> {
    pub fn get(&self) -> Option<Committed<A>> {
        self.0.lock().expect("committed lock").clone()
    }
}

struct Handle<A: Aggregate> {
    jobs: mpsc::Sender<Job<A>>,
    committed: Arc<Mutex<Option<Committed<A>>>>,
}

impl<A: Aggregate> Clone for Handle<A> {
    fn clone(&self) -> Self {
        Self {
            jobs: self.jobs.clone(),
            committed: self.committed.clone(),
        }
    }
}

/// The writers of one aggregate type in this process.
pub struct Writers<A: Aggregate> {
    running: Arc<Running<A>>,
    parked: Arc<Parked<A>>,
    pool: PgPool,
    commit: Arc<GroupCommit>,
    retry: RetryPolicy,
    idle: Duration,
    cold: ColdStart,
}

/// Another handle on the same writers (one registry, one group commit): for a second store of the
/// same process ([`crate::EventStore::sharing_writers`]).
impl<A: Aggregate> Clone for Writers<A> {
    fn clone(&self) -> Self {
        Self {
            running: self.running.clone(),
            parked: self.parked.clone(),
            pool: self.pool.clone(),
            commit: self.commit.clone(),
            retry: self.retry,
            idle: self.idle,
            cold: self.cold,
        }
    }
}

/// What a writer without a state in memory starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColdStart {
    /// The snapshot and the events after it, read from the store.
    Load,
    /// A new aggregate (version 0), unread: right for aggregates that are usually new when first
    /// used (a flash-sale buyer's allowance). When it is not new, the append of version 1 loses
    /// to the stored one (or the lookup before an answer from memory sees a later version) and
    /// the writer loads it then: one skipped row instead of a read per new aggregate.
    AssumeNew,
}

impl<A> Writers<A>
where
    A: Aggregate<Services = ()> + Clone + 'static,
    A::Command: Clone + Send + Sync + 'static,
    A::Error: Send + 'static,
{
    /// Writers that stop after `idle` without commands (parking up to `parked` states) and start
    /// from a parked state or as `cold` says.
    pub fn new(
        pool: PgPool,
        commit: Arc<GroupCommit>,
        retry: RetryPolicy,
        (idle, parked): (Duration, usize),
        cold: ColdStart,
    ) -> Self {
        Self {
            running: Default::default(),
            parked: Arc::new(Parked::new(parked)),
            pool,
            commit,
            retry,
            idle,
            cold,
        }
    }

    /// Queues `command` for aggregate `id` and waits for its answer (after the durable commit).
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
        metadata: HashMap<String, String>,
    ) -> Answer<A> {
        answered::<A>(self.queue(id, command, metadata, Link::None)?).await
    }

    /// Queues `command` to ride with another writer's command ([`crate::linked`]): its events,
    /// if it writes any, are handed over as a [`Rider`] instead of committed.
    pub fn execute_riding(
        &self,
        id: &str,
        command: A::Command,
        metadata: HashMap<String, String>,
    ) -> Result<Riding<A>, StoreError<A::Error>> {
        let (ride, rider) = oneshot::channel();
        let answer = self.queue(id, command, metadata, Link::Rides(ride))?;
        Ok(Riding { rider, answer })
    }

    /// Queues `command` carrying `rider`: the rider's append commits with the command's events
    /// if it writes any, and is cancelled otherwise.
    pub async fn execute_carrying(
        &self,
        id: &str,
        command: A::Command,
        metadata: HashMap<String, String>,
        rider: Rider,
    ) -> Answer<A> {
        answered::<A>(self.queue(id, command, metadata, Link::Carries(rider))?).await
    }

    fn queue(
        &self,
        id: &str,
        command: A::Command,
        metadata: HashMap<String, String>,
        link: Link,
    ) -> Result<oneshot::Receiver<Answer<A>>, StoreError<A::Error>> {
        let (reply, answer) = oneshot::channel();
        let mut job = Job {
            command,
            metadata,
            reply,
            link,
        };
        // A writer that just stopped (idle) closed its queue: start another, once.
        for _ in 0..2 {
            let handle = self.handle(id);
            match handle.jobs.try_send(job) {
                Ok(()) => return Ok(answer),
                Err(mpsc::error::TrySendError::Full(back)) => {
                    metrics::counter!("seatgrid_writer_busy_total", "aggregate" => A::TYPE)
                        .increment(1);
                    return Err(not_queued(back, StoreError::Busy));
                }
                Err(mpsc::error::TrySendError::Closed(back)) => {
                    job = back;
                    forget(&self.running, id, &handle.jobs);
                }
            }
        }
        let error = StoreError::Unavailable("no writer could be started".into());
        Err(not_queued(job, error))
    }

    /// The running writer's committed-state cell, to read again later without the registry's
    /// lock (see [`CommittedCell`]).
    pub fn committed_cell(&self, id: &str) -> Option<CommittedCell<A>> {
        let running = self.running.lock().expect("writers lock");
        running.get(id).map(|h| CommittedCell(h.committed.clone()))
    }

    /// The state the aggregate's writer holds as committed, if one is running and loaded.
    pub fn committed(&self, id: &str) -> Option<Committed<A>> {
        let running = self.running.lock().expect("writers lock");
        let handle = running.get(id)?;
        let committed = handle.committed.lock().expect("committed lock").clone();
        committed
    }

    /// Gives a state just read from the store (at `version`) to the aggregate's writer when none
    /// is running, so that it starts from it instead of reading it again.
    pub fn seed(&self, id: &str, state: Arc<A>, version: usize) {
        let mut running = self.running.lock().expect("writers lock");
        if running.get(id).is_none_or(|h| h.jobs.is_closed()) {
            self.start(&mut running, id, Some(Committed { state, version }));
        }
    }

    fn handle(&self, id: &str) -> Handle<A> {
        let mut running = self.running.lock().expect("writers lock");
        match running.get(id).filter(|h| !h.jobs.is_closed()) {
            Some(h) => h.clone(),
            None => self.start(&mut running, id, None),
        }
    }

    fn start(
        &self,
        running: &mut HashMap<String, Handle<A>>,
        id: &str,
        committed: Option<Committed<A>>,
    ) -> Handle<A> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let committed = committed.or_else(|| self.parked.take(id));
        let handle = Handle {
            jobs: tx,
            committed: Arc::new(Mutex::new(committed)),
        };
        running.insert(id.to_owned(), handle.clone());
        let writer = Writer {
            id: id.to_owned(),
            pool: self.pool.clone(),
            commit: self.commit.clone(),
            retry: self.retry,
            idle: self.idle,
            cold: self.cold,
            committed: handle.committed.clone(),
            parked: self.parked.clone(),
        };
        tokio::spawn(writer.run(rx, self.running.clone(), handle.jobs.clone()));
        handle
    }
}

struct Writer<A: Aggregate> {
    id: String,
    pool: PgPool,
    commit: Arc<GroupCommit>,
    retry: RetryPolicy,
    idle: Duration,
    cold: ColdStart,
    /// The writer's state: the one copy, shared with readers ([`Writers::committed`]); `None`
    /// when unknown (read again before the next decision).
    committed: Arc<Mutex<Option<Committed<A>>>>,
    parked: Arc<Parked<A>>,
}

impl<A> Writer<A>
where
    A: Aggregate<Services = ()> + Clone + 'static,
    A::Command: Clone + Send + Sync + 'static,
    A::Error: Send + 'static,
{
    async fn run(
        self,
        mut jobs: mpsc::Receiver<Job<A>>,
        running: Arc<Running<A>>,
        me: mpsc::Sender<Job<A>>,
    ) {
        // A riding command is a batch of its own ([`crate::linked`]): one met while taking a
        // batch waits here for the next.
        let mut next: Option<Job<A>> = None;
        loop {
            let queued = match next.take() {
                Some(job) => Ok(Some(job)),
                None => tokio::time::timeout(self.idle, jobs.recv()).await,
            };
            let first = match queued {
                Ok(Some(job)) => job,
                Ok(None) => break,
                Err(_) => {
                    // Idle: refuse new commands, then finish those that slipped in.
                    jobs.close();
                    match jobs.try_recv() {
                        Ok(job) => job,
                        Err(_) => {
                            let last = self.committed.lock().expect("committed lock").take();
                            if let Some(state) = last {
                                self.parked.park(&self.id, state);
                            }
                            break;
                        }
                    }
                }
            };
            let alone = first.link.rides();
            let mut batch = vec![first];
            while !alone && batch.len() < MAX_JOBS {
                match jobs.try_recv() {
                    Ok(job) if job.link.rides() => {
                        next = Some(job);
                        break;
                    }
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            metrics::histogram!("seatgrid_writer_batch_commands", "aggregate" => A::TYPE)
                .record(batch.len() as f64);
            // The batch runs as its own task so that a panic in it is caught here: its callers'
            // answers are dropped with it (an error to each, never a success).
            let env = BatchEnv {
                id: self.id.clone(),
                pool: self.pool.clone(),
                commit: self.commit.clone(),
                attempts: self.retry.max_attempts.max(1),
                assume_new: self.cold == ColdStart::AssumeNew,
                committed: self.committed.clone(),
            };
            if let Err(e) = tokio::spawn(run_batch(env, batch)).await {
                tracing::error!(aggregate = A::TYPE, id = %self.id, error = %e, "writer failed; restarting from the store");
                metrics::counter!("seatgrid_writer_restarts_total", "aggregate" => A::TYPE)
                    .increment(1);
                *self.committed.lock().expect("committed lock") = None;
            }
        }
        forget(&running, &self.id, &me);
    }
}

/// A command queued to ride with another ([`Writers::execute_riding`]).
pub struct Riding<A: Aggregate> {
    rider: oneshot::Receiver<Rider>,
    answer: oneshot::Receiver<Answer<A>>,
}

/// A riding command's answer, once the command it rode with is decided and committed.
pub struct RideAnswer<A: Aggregate>(oneshot::Receiver<Answer<A>>);

impl<A: Aggregate> Riding<A> {
    /// The rider, once the command was decided and wrote events (give it to the command it rides
    /// with; its answer follows), or else the command's answer: a refusal, a success that wrote
    /// nothing, or a failure.
    pub async fn decided(self) -> Result<(Rider, RideAnswer<A>), Answer<A>> {
        match self.rider.await {
            Ok(rider) => Ok((rider, RideAnswer(self.answer))),
            Err(_) => Err(answered::<A>(self.answer).await),
        }
    }
}

impl<A: Aggregate> RideAnswer<A> {
    pub async fn get(self) -> Answer<A> {
        answered::<A>(self.0).await
    }
}

/// `error`, for a job that was never queued: a rider it carried is not written.
fn not_queued<A: Aggregate>(mut job: Job<A>, error: StoreError<A::Error>) -> StoreError<A::Error> {
    if let Some(rider) = job.link.take_rider() {
        rider.finish(RideOutcome::Cancelled);
    }
    error
}

async fn answered<A: Aggregate>(answer: oneshot::Receiver<Answer<A>>) -> Answer<A> {
    answer.await.unwrap_or_else(|_| {
        Err(StoreError::Unavailable(
            "the writer stopped before answering".into(),
        ))
    })
}

/// Drops the registry's entry for `id` if it is still the writer behind `jobs`.
fn forget<A: Aggregate>(running: &Running<A>, id: &str, jobs: &mpsc::Sender<Job<A>>) {
    let mut running = running.lock().expect("writers lock");
    if running.get(id).is_some_and(|h| h.jobs.same_channel(jobs)) {
        running.remove(id);
    }
}
