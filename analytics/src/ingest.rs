//! The ClickHouse ingester: streams every domain event, in the event log's global order, into
//! `domain_events` in batches.
//!
//! Policy:
//! - **Batches**: a batch is sent when it reaches `max_rows` (10,000) or its oldest row has waited
//!   `max_delay` (1 s), whichever comes first.
//! - **Effectively exactly-once**: the checkpoint (`projection_checkpoints`, name
//!   [`CLICKHOUSE_STREAM`]) advances only after ClickHouse accepted the batch. A crash in between
//!   re-sends the batch; the table keeps one row per global position (ReplacingMergeTree), and every
//!   report reads with `FINAL`, so nothing is counted twice.
//! - **Tracing**: once a batch is committed, each event that carries a trace context gets its
//!   `projection.apply` span (projection `clickhouse_events`) in the trace of the command that
//!   appended it, as the read-model projector does.
//! - **ClickHouse down**: the batch is kept and retried with a growing pause (up to 5 s); the
//!   ingester reads nothing more meanwhile, so memory stays bounded. The command side never waits
//!   for this: it only appends to Postgres. When ClickHouse returns, ingestion catches up by itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::Retryable;
use chrono::Utc;
use domain::EventCatalog;
use projections::tracing_context::TraceLink;
use projections::{Checkpoints, EventLog, GlobalPosition};
use sqlx::PgPool;

use crate::rows::{EventRow, Layouts, RowError};

/// The checkpoint name of the ClickHouse stream.
pub const CLICKHOUSE_STREAM: &str = "clickhouse_events";
pub const TABLE: &str = "domain_events";

#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub max_rows: usize,
    pub max_delay: Duration,
    /// How often to look for new events while idle.
    pub poll_interval: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_rows: 10_000,
            max_delay: Duration::from_secs(1),
            poll_interval: Duration::from_millis(100),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("event store: {0}")]
    Store(#[from] sqlx::Error),
    #[error("event log: {0}")]
    Log(#[from] projections::EventLogError),
    #[error(transparent)]
    Row(#[from] RowError),
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
}

pub struct Ingester {
    pool: PgPool,
    log: EventLog,
    checkpoints: Checkpoints,
    client: clickhouse::Client,
    layouts: Layouts,
    config: IngestConfig,
}

impl Ingester {
    /// `client` must point at the analytics database (see `crate::connect`).
    pub fn new(pool: PgPool, client: clickhouse::Client, config: IngestConfig) -> Self {
        Self::with_catalog(pool, client, config, Arc::default())
    }

    /// Like [`Self::new`], labelling seats from the process's shared `catalog` of events.
    pub fn with_catalog(
        pool: PgPool,
        client: clickhouse::Client,
        config: IngestConfig,
        catalog: Arc<EventCatalog>,
    ) -> Self {
        Self {
            log: EventLog::new(pool.clone()),
            checkpoints: Checkpoints::new(pool.clone()),
            layouts: Layouts::new(pool.clone(), catalog),
            pool,
            client,
            config,
        }
    }

    /// Sends rows to ClickHouse in one insert.
    pub async fn insert(
        client: &clickhouse::Client,
        rows: &[EventRow],
    ) -> Result<(), clickhouse::error::Error> {
        let mut insert = client.insert::<EventRow>(TABLE).await?;
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await
    }

    /// Runs forever; errors are logged and retried (see [`projections::backoff`]).
    pub async fn run(mut self) {
        let mut delays = projections::backoff::reconnect_delays();
        while let Err(e) = self.stream().await {
            tracing::warn!(error = %e, "ClickHouse ingestion paused; retrying");
            let delay = delays.next().unwrap_or(Duration::from_secs(5));
            tokio::time::sleep(delay).await;
        }
    }

    /// Streams from the stored checkpoint until an error.
    async fn stream(&mut self) -> Result<(), IngestError> {
        let mut committed = self.checkpoints.load(CLICKHOUSE_STREAM).await?;
        let mut read_to = committed;
        let mut batch: Vec<EventRow> = Vec::new();
        let mut traces: Vec<TraceLink> = Vec::new();
        let mut oldest: Option<Instant> = None;
        loop {
            let room = self.config.max_rows.saturating_sub(batch.len()).max(1) as i64;
            let events = self.log.read_after(read_to, room.min(5_000)).await?;
            let now_ms = Utc::now().timestamp_millis();
            for e in &events {
                batch.push(self.layouts.row(e, now_ms).await?);
            }
            traces.extend(events.iter().filter_map(TraceLink::of));
            if let Some(last) = events.last() {
                read_to = last.global;
                oldest.get_or_insert_with(Instant::now);
            }
            let due = oldest.is_some_and(|t| t.elapsed() >= self.config.max_delay);
            if !batch.is_empty() && (batch.len() >= self.config.max_rows || due) {
                self.flush(&batch, committed, read_to).await?;
                committed = read_to;
                batch.clear();
                for link in traces.drain(..) {
                    link.applied(CLICKHOUSE_STREAM);
                }
                oldest = None;
            } else if events.is_empty() {
                tokio::time::sleep(self.config.poll_interval).await;
            }
        }
    }

    /// Inserts a batch (retrying until ClickHouse takes it), then advances the checkpoint.
    async fn flush(
        &self,
        batch: &[EventRow],
        from: GlobalPosition,
        to: GlobalPosition,
    ) -> Result<(), IngestError> {
        (|| Self::insert(&self.client, batch))
            .retry(projections::backoff::reconnect())
            .notify(|e, _| {
                metrics::counter!("seatgrid_clickhouse_insert_failures_total").increment(1);
                tracing::warn!(error = %e, rows = batch.len(), "ClickHouse insert failed; retrying");
            })
            .await?;
        let mut conn = self.pool.acquire().await?;
        if !Checkpoints::advance(&mut conn, CLICKHOUSE_STREAM, from, to, batch.len()).await? {
            // Reset meanwhile (a rebuild): what was sent is harmless, the stream restarts.
            tracing::info!("ClickHouse checkpoint moved elsewhere; restarting the stream");
            return Err(IngestError::Store(sqlx::Error::RowNotFound));
        }
        let newest = batch
            .iter()
            .map(|r| r.recorded_at_ms)
            .max()
            .unwrap_or_default();
        metrics::counter!("seatgrid_clickhouse_rows_ingested_total").increment(batch.len() as u64);
        metrics::histogram!("seatgrid_clickhouse_batch_rows").record(batch.len() as f64);
        // From the newest event's commit to the moment ClickHouse holds it.
        metrics::gauge!("seatgrid_clickhouse_ingest_lag_ms")
            .set((Utc::now().timestamp_millis() - newest) as f64);
        Ok(())
    }
}
