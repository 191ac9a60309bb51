//! Access to the Postgres event store: one cqrs-es framework per aggregate, a bounded retry on
//! optimistic-lock conflicts, and batch loads of aggregates for reads.
//!
//! Policy:
//! - cqrs-es never retries; [`EventStore::execute`] reloads the aggregate and retries a command that
//!   lost an optimistic-lock race, up to [`RetryPolicy::max_attempts`] attempts in all, sleeping an
//!   exponential delay with random jitter in between (`backon`). A command that still conflicts
//!   then fails with [`StoreError::Contention`], which the API answers with 503 and `Retry-After`.
//! - Within one process, commands on the same aggregate take turns (a striped in-process lock held
//!   while the aggregate is loaded, decided and appended), so a burst of buyers on one seat block
//!   queues instead of conflicting. Optimistic versioning still decides between processes; the
//!   retry covers those conflicts. A command that waited [`LOCK_WAIT`] for its turn is answered as
//!   contention.
//! - The command is rebuilt for every attempt, so it is judged at a fresh `now`.
//! - Business refusals are never retried: they come back as [`StoreError::Rejected`].

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework};
use domain::{CustomerAllowance, SeatBlock, TicketedEvent};
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;

type Framework<A> = CqrsFramework<A, PersistedEventStore<PostgresEventRepository, A>>;

/// Longest wait for an aggregate's turn in this process before answering "contention".
pub const LOCK_WAIT: Duration = Duration::from_secs(5);
const LOCK_STRIPES: usize = 1024;

/// How hard to try when concurrent commands on one aggregate conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(100),
        }
    }
}

impl RetryPolicy {
    /// The delays between attempts: exponential from `base_delay`, capped at `max_delay`, each
    /// with random jitter so that racing commands spread out.
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError<E: std::error::Error> {
    #[error("refused: {0}")]
    Rejected(E),
    #[error("still conflicting after {0} attempts")]
    Contention(u32),
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    #[error("stored events do not match the code: {0}")]
    Corrupt(String),
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("event store unavailable: {0}")]
    Unavailable(#[from] sqlx::Error),
    #[error("stored event {0} does not deserialize: {1}")]
    Corrupt(String, serde_json::Error),
}

impl<E: std::error::Error> From<LoadError> for StoreError<E> {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Unavailable(e) => Self::Unavailable(e.to_string()),
            e @ LoadError::Corrupt(..) => Self::Corrupt(e.to_string()),
        }
    }
}

/// One stored event's payload, as loads read it.
#[derive(sqlx::FromRow)]
struct StoredPayload {
    aggregate_id: String,
    payload: serde_json::Value,
}

/// The three aggregates' command paths over one connection pool.
pub struct EventStore {
    pool: PgPool,
    retry: RetryPolicy,
    events: Framework<TicketedEvent>,
    blocks: Framework<SeatBlock>,
    allowances: Framework<CustomerAllowance>,
    /// Striped per-aggregate turns (see the module policy).
    turns: Arc<[tokio::sync::Mutex<()>]>,
}

/// Something an [`EventStore`] can run commands for.
pub trait StoredAggregate: Aggregate + Sized {
    fn framework(store: &EventStore) -> &Framework<Self>;
}

macro_rules! stored {
    ($aggregate:ty, $field:ident) => {
        impl StoredAggregate for $aggregate {
            fn framework(store: &EventStore) -> &Framework<Self> {
                &store.$field
            }
        }
    };
}
stored!(TicketedEvent, events);
stored!(SeatBlock, blocks);
stored!(CustomerAllowance, allowances);

fn framework<A: Aggregate<Services = ()>>(pool: &PgPool) -> Framework<A> {
    let repo = PostgresEventRepository::new(pool.clone());
    CqrsFramework::new(PersistedEventStore::new_event_store(repo), vec![], ())
}

impl EventStore {
    pub fn new(pool: PgPool, retry: RetryPolicy) -> Self {
        Self {
            events: framework(&pool),
            blocks: framework(&pool),
            allowances: framework(&pool),
            pool,
            retry,
            turns: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect::<Vec<_>>()
                .into(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs the command built by `command` against aggregate `id`, retrying conflicts.
    pub async fn execute<A: StoredAggregate>(
        &self,
        id: &str,
        metadata: &HashMap<String, String>,
        mut command: impl FnMut() -> A::Command,
    ) -> Result<(), StoreError<A::Error>> {
        let framework = A::framework(self);
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
            async move {
                let result = framework.execute_with_metadata(id, command, metadata).await;
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

    /// Loads several aggregates of one type in one query; ids with no events are left out.
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
        let rows: Vec<StoredPayload> = if let [id] = ids {
            sqlx::query_as(
                "SELECT aggregate_id, payload FROM events
                  WHERE aggregate_type = $1 AND aggregate_id = $2
                  ORDER BY sequence",
            )
            .bind(A::TYPE)
            .bind(id)
            .fetch_all(&self.pool)
            .await?
        } else {
            sqlx::query_as(
                "SELECT e.aggregate_id, e.payload
                   FROM (SELECT DISTINCT unnest($2::text[]) AS id) wanted
                  CROSS JOIN LATERAL (
                        SELECT aggregate_id, payload, sequence FROM events
                         WHERE aggregate_type = $1 AND aggregate_id = wanted.id
                        OFFSET 0) e
                  ORDER BY e.aggregate_id, e.sequence",
            )
            .bind(A::TYPE)
            .bind(ids)
            .fetch_all(&self.pool)
            .await?
        };
        let mut loaded: HashMap<String, A> = HashMap::new();
        for StoredPayload {
            aggregate_id,
            payload,
        } in rows
        {
            let event = serde_json::from_value::<A::Event>(payload)
                .map_err(|e| LoadError::Corrupt(format!("{} {aggregate_id}", A::TYPE), e))?;
            loaded.entry(aggregate_id).or_default().apply(event);
        }
        Ok(loaded)
    }

    pub async fn load_one<A: Aggregate>(&self, id: &str) -> Result<Option<A>, LoadError> {
        Ok(self.load::<A>(&[id.to_owned()]).await?.remove(id))
    }

    /// The aggregate ids of type `A` whose events mention `hold_id`.
    pub async fn aggregates_of_hold<A: Aggregate>(
        &self,
        hold_id: uuid::Uuid,
    ) -> Result<Vec<String>, LoadError> {
        let ids = sqlx::query_scalar(
            "SELECT DISTINCT aggregate_id FROM events WHERE hold_id = $1 AND aggregate_type = $2",
        )
        .bind(hold_id)
        .bind(A::TYPE)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }
}
