//! A SeatGrid process: the REST command API, the GraphQL API and the pages (the `api` role), and
//! the singleton roles: the projector that keeps the read models (and their Redis cache) up to
//! date, the ingester that streams every event into ClickHouse, the expiry sweeper, and the payment
//! relay with the order process. By default one process has every role ([`crate::roles`]); a
//! singleton role runs only in the process that leads it ([`crate::leadership`]).
//!
//! Policy: Redis must be reachable at start (a clear error otherwise); later outages only cost
//! speed, because every read falls back to Postgres. ClickHouse may be down at start or later:
//! only analytics wait for it. The projector and the ingester stop with the server; anything they
//! had not checkpointed is applied again by the next start.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use analytics::{ClickHouseConfig, IngestConfig, Ingester};
use anyhow::Context as _;
use axum::routing::get;
use backon::Retryable;
use booking::BookingService;
use command_api::{Application, CommandApiConfig};
use domain::EventCatalog;
use metrics_exporter_prometheus::PrometheusHandle;
use projections::{
    joined::JoinedReads, Cache, Checkpoints, ProjectorRunner, ReadModelProjection, ReadModels,
    RunnerConfig,
};
use query_api::{AnalyticsSources, LiveUpdates};
use sqlx::PgPool;

use crate::leadership::{LeaderConfig, RoleWork};
use crate::roles::{Roles, Singleton};

/// The order process's own connections: its batch's transaction and its concurrent settles
/// ([`crate::order_process::SETTLES_AT_ONCE`]).
const ORDER_PROCESS_CONNECTIONS: u32 = crate::order_process::SETTLES_AT_ONCE as u32 + 2;

/// How often cached copies a failed write-through left stale are looked after.
const CACHE_REPAIR_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct SystemConfig {
    pub command: CommandApiConfig,
    /// Limits of GraphQL subscriptions over WebSocket.
    pub ws: query_api::WsLimits,
    pub redis_url: String,
    /// Prefix of every Redis key and channel.
    pub redis_prefix: String,
    pub runner: RunnerConfig,
    /// Analytics; `None` runs without ClickHouse.
    pub clickhouse: Option<ClickHouseConfig>,
    pub ingest: IngestConfig,
    /// Where placed orders' payments are asked (`PAYMENTS_PROVIDER_URL`); `None`: not asked.
    pub payment_provider_url: Option<String>,
    /// What this process does.
    pub roles: Roles,
    pub leadership: LeaderConfig,
}

pub struct System {
    app: Application,
    reads: ReadModels,
    /// The singleton roles this process competes for, with how to start each.
    singletons: Vec<(Singleton, RoleWork)>,
    leadership: LeaderConfig,
    gauges: PgPool,
    /// Pools besides the shared one (the order process's).
    other_pools: Vec<PgPool>,
    /// The projections whose lag this process reports: those it may run.
    watched: Vec<&'static str>,
}

impl System {
    /// Applies migrations, connects Redis, binds the listener. Nothing runs until
    /// [`System::run_until_stopped`].
    /// With `metrics`, the process also serves `/metrics` and keeps its gauges (projection lag,
    /// pool usage) current.
    pub async fn build(
        config: SystemConfig,
        pool: PgPool,
        metrics: Option<PrometheusHandle>,
    ) -> anyhow::Result<Self> {
        let cache = Cache::connect(&config.redis_url, &config.redis_prefix)
            .await
            .context("cannot reach Redis at REDIS_URL")?;
        let live = LiveUpdates::start(&config.redis_url, cache.channel_pattern())
            .await
            .context("cannot subscribe to Redis at REDIS_URL")?;
        // One catalog of ticketed events for the whole process: commands, GraphQL and analytics.
        let catalog = Arc::new(EventCatalog::default());
        let policy = config.command.policy;
        let roles = config.roles;
        // The sweeper is a singleton role here, not part of every API process.
        let sweep_every = config.command.sweep_interval;
        let command = CommandApiConfig {
            sweep_interval: None,
            ..config.command
        };
        let app = Application::build_with_catalog(command, pool.clone(), catalog.clone()).await?;
        let reads = ReadModels::new(pool.clone(), Some(cache.clone()));
        let sources = config.clickhouse.as_ref().map(|ch| AnalyticsSources {
            reports: analytics::Reports::new(ch.writer()),
            adhoc: analytics::AdhocSql::new(ch.reader(), &ch.database),
        });
        let schema = query_api::build_schema(
            reads.clone(),
            app.commands(),
            catalog.clone(),
            Some(live),
            sources,
        );
        let projection = Arc::new(ReadModelProjection::new(Some(cache)));
        {
            // Stale cached copies go within a second of Redis taking writes again (at start:
            // whatever a predecessor left), not only with the next batch.
            let projection = Arc::downgrade(&projection);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(CACHE_REPAIR_EVERY);
                loop {
                    tick.tick().await;
                    let Some(projection) = projection.upgrade() else {
                        return;
                    };
                    if let Err(e) = projection.repair_cache().await {
                        tracing::debug!(error = %e, "stale cached copies not dropped yet");
                    }
                }
            });
        }
        let mut singletons: Vec<(Singleton, RoleWork)> = Vec::new();
        let mut other_pools = Vec::new();
        if roles.projector {
            let (pool, runner) = (pool.clone(), config.runner.clone());
            singletons.push((
                Singleton::Projector,
                Arc::new(move || {
                    let projector =
                        ProjectorRunner::new(pool.clone(), projection.clone(), runner.clone());
                    Box::pin(projector.run(std::future::pending::<()>()))
                }),
            ));
        }
        if let (true, Some(every)) = (roles.sweeper, sweep_every) {
            let service = app.service();
            singletons.push((
                Singleton::Sweeper,
                Arc::new(move || Box::pin(booking::sweeper::run(service.clone(), every))),
            ));
        }
        // Orders move only with payments: the relay and the order process run together, when a
        // provider is configured.
        if let (true, Some(url)) = (roles.payments, config.payment_provider_url) {
            let provider = Arc::new(crate::payment_provider::HttpProvider::new(url));
            let relay = Arc::new(crate::payment_relay::PaymentRelay::new(
                provider,
                app.service(),
            ));
            // The order process settles through a small pool of its own: under a sale, request
            // handlers queue for the shared pool, and a settle (a dozen statements in a row)
            // waiting behind them at every statement left paid orders unconfirmed for seconds.
            // The shared pool's options: it follows a moving primary the same way.
            let own = pool
                .options()
                .clone()
                .max_connections(ORDER_PROCESS_CONNECTIONS)
                .connect_lazy_with(pool.connect_options().as_ref().clone());
            other_pools.push(own.clone());
            // Its own pool for its reads and order commands; the request path's writers for seat
            // blocks and allowances (one writer per aggregate in the process).
            let store = app.service().store().sharing_writers(own.clone());
            let core = Arc::new(BookingService::with_catalog(store, policy, catalog.clone()));
            let process = Arc::new(crate::order_process::OrderProcess::new(core));
            let (pool, runner) = (pool.clone(), config.runner.clone());
            singletons.push((
                Singleton::Payments,
                Arc::new(move || {
                    let relay = ProjectorRunner::new(pool.clone(), relay.clone(), runner.clone());
                    let process =
                        ProjectorRunner::new(own.clone(), process.clone(), runner.clone());
                    Box::pin(async move {
                        tokio::join!(
                            relay.run(std::future::pending::<()>()),
                            process.run(std::future::pending::<()>())
                        );
                    })
                }),
            ));
        }
        let ingests = roles.ingester && config.clickhouse.is_some();
        if let (true, Some(ch)) = (roles.ingester, config.clickhouse) {
            let (pool, ingest, catalog) = (pool.clone(), config.ingest, catalog.clone());
            singletons.push((
                Singleton::Ingester,
                Arc::new(move || {
                    let ingester = Ingester::with_catalog(
                        pool.clone(),
                        ch.writer(),
                        ingest.clone(),
                        catalog.clone(),
                    );
                    let ch = ch.clone();
                    Box::pin(async move {
                        // ClickHouse may be down at start: nothing else waits for it.
                        let migrated = (|| ch.migrate())
                            .retry(projections::backoff::reconnect())
                            .notify(|e, _| {
                                tracing::warn!(error = %e, "ClickHouse schema not applied yet; retrying");
                            })
                            .await;
                        if migrated.is_ok() {
                            ingester.run().await;
                        }
                    })
                }),
            ));
        }
        let app = app.with_projected_seat_maps(Arc::new(ProjectedFromReadModels {
            reads: reads.clone(),
            joined: JoinedReads::fresh_for(SEAT_MAP_FRESH_FOR),
        }));
        // Without the API role, a process answers health checks and metrics only.
        let (app, mut routes) = if roles.api {
            let routes = query_api::router(
                schema,
                app.auth(),
                config.ws,
                command_api::http::docs::ASSETS,
            );
            (app, routes)
        } else {
            (app.health_only(), axum::Router::new())
        };
        if let Some(handle) = metrics {
            routes = routes.route("/metrics", get(move || std::future::ready(handle.render())));
        }
        let watched = [
            (roles.projector, projections::READ_MODELS),
            (ingests, analytics::CLICKHOUSE_STREAM),
        ]
        .into_iter()
        .filter_map(|(runs, name)| runs.then_some(name))
        .collect();
        Ok(Self {
            gauges: pool.clone(),
            other_pools,
            watched,
            app: app.with_routes(routes),
            reads,
            singletons,
            leadership: config.leadership,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.app.local_addr()
    }

    pub fn service(&self) -> Arc<BookingService> {
        self.app.service()
    }

    pub fn reads(&self) -> &ReadModels {
        &self.reads
    }

    /// Every PostgreSQL pool of the process, the shared one first: a moving primary moves them all
    /// ([`crate::database`]).
    pub fn pools(&self) -> Vec<PgPool> {
        std::iter::once(self.gauges.clone())
            .chain(self.other_pools.iter().cloned())
            .collect()
    }

    /// Serves and projects until `shutdown` completes.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let leaders: Vec<_> = self
            .singletons
            .into_iter()
            .map(|(role, work)| {
                tokio::spawn(crate::leadership::lead(
                    self.gauges.clone(),
                    role,
                    self.leadership,
                    work,
                ))
            })
            .collect();
        let gauges = tokio::spawn(update_gauges(self.gauges, self.watched));
        let result = self.app.run_until_stopped(shutdown).await;
        // Stopping a role's leadership stops the role and frees its lock.
        for task in leaders {
            task.abort();
        }
        gauges.abort();
        result
    }
}

/// Every two seconds: how far each `watched` projection is behind (only the ones this process may
/// run: counting a stream that nothing runs, ClickHouse off, scanned the whole log every time), how
/// busy the pool is, and how much memory the process holds.
async fn update_gauges(pool: PgPool, watched: Vec<&'static str>) {
    let checkpoints = Checkpoints::new(pool.clone());
    loop {
        for &name in &watched {
            if let Ok(lag) = checkpoints.lag(name).await {
                metrics::gauge!("seatgrid_projection_lag_events", "projection" => name)
                    .set(lag.events_behind as f64);
                metrics::gauge!("seatgrid_projection_lag_ms", "projection" => name)
                    .set(lag.ms_behind as f64);
            }
        }
        // Resident memory of this process (Linux), for soak runs.
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
            if let Some(pages) = statm
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<f64>().ok())
            {
                metrics::gauge!("seatgrid_process_resident_memory_bytes").set(pages * 4096.0);
            }
        }
        let idle = pool.num_idle() as f64;
        metrics::gauge!("seatgrid_db_pool_connections", "state" => "idle").set(idle);
        metrics::gauge!("seatgrid_db_pool_connections", "state" => "in_use")
            .set(f64::from(pool.size()) - idle);
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

/// How long a read of an event's projected seat map also answers the REST requests after it: a
/// crowd costs at most one cache round trip per event per period, and the answer is at most that
/// much older than the request, beside the read model's own lag behind the store.
const SEAT_MAP_FRESH_FOR: std::time::Duration = std::time::Duration::from_millis(10);

/// REST seat maps from the cached read model (see `command_api::http::ProjectedSeatMaps`); a
/// crowd's reads of one event join the read in flight, or one started less than
/// [`SEAT_MAP_FRESH_FOR`] before (`projections::joined`).
struct ProjectedFromReadModels {
    reads: ReadModels,
    joined: JoinedReads<uuid::Uuid, String>,
}

#[async_trait::async_trait]
impl command_api::http::ProjectedSeatMaps for ProjectedFromReadModels {
    async fn seat_map(&self, event_id: uuid::Uuid) -> Option<String> {
        let reads = self.reads.clone();
        self.joined
            .read(event_id, async move {
                match reads.seat_map(event_id).await {
                    Ok(map) => map.and_then(|m| String::from_utf8(m.seats).ok()),
                    Err(e) => {
                        tracing::warn!(error = %e, "read side unavailable; seat map from the event store");
                        None
                    }
                }
            })
            .await
    }
}
