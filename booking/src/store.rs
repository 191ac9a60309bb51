//! Access to the Postgres event store: the seat blocks' and allowances' writers, a cqrs-es
//! framework for the other aggregates with a bounded retry on optimistic-lock conflicts, and
//! batch loads for reads.
//!
//! Policy:
//! - Seat blocks and customer allowances, the aggregates every hold writes, go through their
//!   in-memory writers ([`crate::writers`]: state in memory, queued commands decided in order,
//!   group commit). What follows about turns and retries is for the others (ticketed events,
//!   orders: a few commands each), which cqrs-es runs as before.
//! - cqrs-es never retries; [`EventStore::execute`] reloads the aggregate and retries a command that
//!   lost an optimistic-lock race, up to [`RetryPolicy::max_attempts`] attempts in all, sleeping an
//!   exponential delay with random jitter in between (`backon`). A command that still conflicts
//!   then fails with [`StoreError::Contention`], which the API answers with 503 and `Retry-After`.
//! - Within one process, commands on the same aggregate take turns (a striped in-process lock held
//!   while the aggregate is loaded, decided and appended), so a burst of buyers on one seat block
//!   queues instead of conflicting. Optimistic versioning still decides between processes; the
//!   retry covers those conflicts. A command that waited [`LOCK_WAIT`] for its turn is answered as
//!   contention.
//! - Each attempt runs on a task of its own: postgres-es begins its transaction with
//!   `Pool::begin`, whose BEGIN, cut short by a caller that leaves, would stay open on the pooled
//!   connection (see `migrations::transaction`; a test cuts commands short all through their first
//!   10 ms).
//! - The command is rebuilt for every attempt, so it is judged at a fresh `now`.
//! - Business refusals are never retried: they come back as [`StoreError::Rejected`].
//! - Seat blocks and allowances are loaded from a snapshot plus the events after it (rows in
//!   postgres-es' snapshot format, written by the group commit as
//!   [`snapshot_index`](crate::persistence::snapshot_index) says;
//!   they have no cqrs-es framework: their commands go through the writers), so a command's cost
//!   does not grow with the aggregate's history; their states are bounded (see the domain). Reads
//!   load the same way ([`EventStore::load`]). A change to an aggregate's state shape that old snapshots
//!   cannot deserialize must delete that aggregate type's snapshots in its migration.
//! - Questions about one hold (its status, where it is) load only that hold's events
//!   ([`EventStore::load_for_hold`]): exact for any hold, however old, without the aggregates'
//!   whole state.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use backon::Retryable;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework};
use domain::{CustomerAllowance, Order, SeatBlock, TicketedEvent};
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;
use tracing::Instrument;

use crate::group_commit::GroupCommit;
use crate::persistence::{apply_row, load_many_with_version, load_with_version};
pub use crate::persistence::{LoadError, RetryPolicy, StoreError};
use crate::version_probe::VersionProbes;
use crate::writers::{
    ColdStart, Writers, ALLOWANCES_PARKED, ALLOWANCE_IDLE, BLOCKS_PARKED, BLOCK_IDLE,
};

type Framework<A> = CqrsFramework<A, PersistedEventStore<PostgresEventRepository, A>>;

/// Longest wait for an aggregate's turn in this process before answering "contention".
pub const LOCK_WAIT: Duration = Duration::from_secs(5);
const LOCK_STRIPES: usize = 1024;

/// The aggregates' command paths over one connection pool.
pub struct EventStore {
    pool: PgPool,
    retry: RetryPolicy,
    events: Arc<Framework<TicketedEvent>>,
    orders: Arc<Framework<Order>>,
    block_writers: Writers<SeatBlock>,
    allowance_writers: Writers<CustomerAllowance>,
    block_probes: VersionProbes,
    /// Striped per-aggregate turns (see the module policy).
    turns: Arc<[tokio::sync::Mutex<()>]>,
}

type Running<'a, A> =
    Pin<Box<dyn Future<Output = Result<(), StoreError<<A as Aggregate>::Error>>> + Send + 'a>>;

/// Something an [`EventStore`] can run commands for: through its in-memory writer, or else
/// through its cqrs-es framework.
pub trait StoredAggregate: Aggregate + Sized + 'static {
    /// The cqrs-es framework of a type without writers (`None` for the types with writers).
    fn framework(store: &EventStore) -> Option<&Arc<Framework<Self>>>;

    /// Runs `command` through this type's in-memory writer, for types that have them.
    fn through_writer<'a>(
        _store: &'a EventStore,
        _id: &'a str,
        _command: Self::Command,
        _metadata: HashMap<String, String>,
    ) -> Option<Running<'a, Self>> {
        None
    }
}

macro_rules! stored {
    ($aggregate:ty, $field:ident) => {
        impl StoredAggregate for $aggregate {
            fn framework(store: &EventStore) -> Option<&Arc<Framework<Self>>> {
                Some(&store.$field)
            }
        }
    };
    ($aggregate:ty, writers: $writers:ident) => {
        impl StoredAggregate for $aggregate {
            fn framework(_: &EventStore) -> Option<&Arc<Framework<Self>>> {
                None
            }

            fn through_writer<'a>(
                store: &'a EventStore,
                id: &'a str,
                command: Self::Command,
                metadata: HashMap<String, String>,
            ) -> Option<Running<'a, Self>> {
                Some(Box::pin(store.$writers.execute(id, command, metadata)))
            }
        }
    };
}
// Events and orders see a few commands each; their commands go through cqrs-es directly.
stored!(TicketedEvent, events);
stored!(Order, orders);
// The hot aggregates of a sale: one writer each, state in memory, group commit.
stored!(SeatBlock, writers: block_writers);
stored!(CustomerAllowance, writers: allowance_writers);

fn framework<A: Aggregate<Services = ()>>(pool: &PgPool) -> Arc<Framework<A>> {
    let repo = PostgresEventRepository::new(pool.clone());
    Arc::new(CqrsFramework::new(
        PersistedEventStore::new_event_store(repo),
        vec![],
        (),
    ))
}

impl EventStore {
    pub fn new(pool: PgPool, retry: RetryPolicy) -> Self {
        let commit = Arc::new(GroupCommit::new(pool.clone()));
        Self {
            block_probes: VersionProbes::new(pool.clone(), SeatBlock::TYPE),
            block_writers: Writers::new(
                pool.clone(),
                commit.clone(),
                retry,
                (BLOCK_IDLE, BLOCKS_PARKED),
                ColdStart::Load,
            ),
            allowance_writers: Writers::new(
                pool.clone(),
                commit,
                retry,
                (ALLOWANCE_IDLE, ALLOWANCES_PARKED),
                ColdStart::AssumeNew,
            ),
            events: framework(&pool),
            orders: framework(&pool),
            pool,
            retry,
            turns: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect::<Vec<_>>()
                .into(),
        }
    }

    /// A store over `pool` for its own commands and reads (ticketed events, orders, loads) that
    /// shares this store's writers, their group commit and version lookups: one writer per seat
    /// block and allowance in the process, whichever store a command comes through (two sets of
    /// writers would each hold a state the other's appends make stale, and reload on every
    /// conflict between them).
    pub fn sharing_writers(&self, pool: PgPool) -> Self {
        Self {
            block_probes: self.block_probes.clone(),
            block_writers: self.block_writers.clone(),
            allowance_writers: self.allowance_writers.clone(),
            events: framework(&pool),
            orders: framework(&pool),
            pool,
            retry: self.retry,
            turns: self.turns.clone(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The seat blocks' writers (their committed states answer early refusals).
    pub fn block_writers(&self) -> &Writers<SeatBlock> {
        &self.block_writers
    }

    /// The customer allowances' writers (a hold's reservation rides with its first block's
    /// events: [`crate::linked`]).
    pub fn allowance_writers(&self) -> &Writers<CustomerAllowance> {
        &self.allowance_writers
    }

    /// Stored versions of seat blocks, one lookup shared by the requests waiting for it.
    pub fn block_probes(&self) -> &VersionProbes {
        &self.block_probes
    }

    /// Runs the command built by `command` against aggregate `id`, retrying conflicts.
    pub async fn execute<A: StoredAggregate>(
        &self,
        id: &str,
        metadata: &HashMap<String, String>,
        mut command: impl FnMut() -> A::Command,
    ) -> Result<(), StoreError<A::Error>>
    where
        A::Command: Send + 'static,
        A::Error: Send + 'static,
    {
        if let Some(running) = A::through_writer(self, id, command(), metadata.clone()) {
            return running.await;
        }
        let framework = A::framework(self).expect("a type without writers has a framework");
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (A::TYPE, id).hash(&mut hasher);
        let stripe = &self.turns[hasher.finish() as usize % LOCK_STRIPES];
        let waited = std::time::Instant::now();
        let Ok(_turn) = tokio::time::timeout(LOCK_WAIT, stripe.lock()).await else {
            tracing::warn!(aggregate = A::TYPE, id, "waited too long for a turn");
            metrics::counter!("seatgrid_command_contention_total", "aggregate" => A::TYPE)
                .increment(1);
            return Err(StoreError::Contention(0));
        };
        metrics::histogram!("seatgrid_aggregate_turn_wait_seconds", "aggregate" => A::TYPE)
            .record(waited.elapsed().as_secs_f64());
        let attempt = || {
            let command = command();
            let metadata = metadata.clone();
            let (framework, owned_id) = (framework.clone(), id.to_owned());
            async move {
                // postgres-es begins its transaction with `Pool::begin`; on a task of its own,
                // that BEGIN cannot be cut short by a caller that leaves (migrations::transaction).
                let appending = async move {
                    framework
                        .execute_with_metadata(&owned_id, command, metadata)
                        .await
                };
                let result = tokio::spawn(appending.in_current_span())
                    .await
                    .unwrap_or_else(|e| Err(AggregateError::UnexpectedError(Box::new(e))));
                if matches!(result, Err(AggregateError::AggregateConflict)) {
                    metrics::counter!("seatgrid_optimistic_conflicts_total", "aggregate" => A::TYPE)
                        .increment(1);
                    tracing::debug!(aggregate = A::TYPE, id, "optimistic-lock conflict");
                }
                result
            }
        };
        let result = attempt
            .retry(self.retry.backoff())
            .when(|e| matches!(e, AggregateError::AggregateConflict))
            .notify(|_, _| {
                metrics::counter!("seatgrid_command_retries_total", "aggregate" => A::TYPE)
                    .increment(1);
            })
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(AggregateError::AggregateConflict) => {
                tracing::warn!(aggregate = A::TYPE, id, "gave up after repeated conflicts");
                metrics::counter!("seatgrid_command_contention_total", "aggregate" => A::TYPE)
                    .increment(1);
                Err(StoreError::Contention(self.retry.max_attempts))
            }
            Err(AggregateError::UserError(e)) => Err(StoreError::Rejected(e)),
            Err(AggregateError::DatabaseConnectionError(e)) => {
                Err(StoreError::Unavailable(e.to_string()))
            }
            Err(AggregateError::DeserializationError(e)) => Err(StoreError::Corrupt(e.to_string())),
            Err(AggregateError::UnexpectedError(e)) => Err(StoreError::Unavailable(e.to_string())),
        }
    }

    /// Loads several aggregates of one type in one query, each from its snapshot (if any) plus
    /// the events after it; ids with no events are left out.
    ///
    /// Both query forms look each id up by the full primary-key prefix. Postgres plans a prepared
    /// statement once per connection and keeps the plan as the table grows; on a young `events`
    /// table without statistics, `aggregate_id = ANY($2)` got a plan that reads every event of the
    /// aggregate type (measured: every refused hold read ~1,400 rows after a few benchmark
    /// scenarios). One id, the common case of a hold, is a plain key lookup; several ids are a
    /// lateral lookup per id (`OFFSET 0` keeps Postgres from flattening it into a join that it
    /// may hash). The single-id form is kept because it is also the cheaper one to plan: under the
    /// flash sale the lateral form for one id cost Postgres ~50% more CPU per refused hold.
    pub async fn load<A: Aggregate>(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, A>, LoadError> {
        if let [id] = ids {
            // One id, the common case of a hold: a plain key lookup (see above).
            let (state, version) = load_with_version::<A>(&self.pool, id).await?;
            return Ok(match version {
                0 => HashMap::new(),
                _ => HashMap::from([(id.clone(), state)]),
            });
        }
        Ok(states(load_many_with_version::<A>(&self.pool, ids).await?))
    }

    /// The aggregates of type `A` whose events mention `hold_id`, each rebuilt from those events
    /// only: exactly what they recorded about this hold, however long their history.
    pub async fn load_for_hold<A: Aggregate>(
        &self,
        hold_id: uuid::Uuid,
    ) -> Result<HashMap<String, A>, LoadError> {
        let rows: Vec<(String, serde_json::Value, i64)> = sqlx::query_as(
            "SELECT aggregate_id, payload, sequence FROM events
              WHERE hold_id = $1 AND aggregate_type = $2
              ORDER BY aggregate_id, sequence",
        )
        .bind(hold_id)
        .bind(A::TYPE)
        .fetch_all(&self.pool)
        .await?;
        let mut loaded = HashMap::<String, (A, usize)>::new();
        for (id, payload, sequence) in rows {
            let aggregate = loaded.entry(id.clone()).or_default();
            apply_row(aggregate, &id, payload, false, sequence)?;
        }
        Ok(states(loaded))
    }

    pub async fn load_one<A: Aggregate>(&self, id: &str) -> Result<Option<A>, LoadError> {
        Ok(self.load::<A>(&[id.to_owned()]).await?.remove(id))
    }
}

/// Loaded aggregates without their versions.
fn states<A>(loaded: HashMap<String, (A, usize)>) -> HashMap<String, A> {
    loaded
        .into_iter()
        .map(|(id, (state, _))| (id, state))
        .collect()
}
