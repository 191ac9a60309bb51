//! Building and running the command API: `Application::build(config, pool)`, then
//! `run_until_stopped(shutdown)`. Migrations are applied during `build`, so every way of starting
//! the API starts on the current schema.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use booking::{
    sweeper, Authenticator, BookingCommands, BookingService, EventStore, RetryPolicy,
    RunToCompletion,
};
use domain::{EventCatalog, EventPolicy};
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::http::limits::{Limiters, RateLimits};
use crate::http::{self, AppState, AppStateParts};

/// Everything the command API needs to know; read from the environment by the binary.
#[derive(Debug, Clone)]
pub struct CommandApiConfig {
    /// Where to listen; port 0 picks a free port (tests).
    pub listen_addr: SocketAddr,
    pub policy: EventPolicy,
    pub retry: RetryPolicy,
    /// How often the expiry sweeper runs; `None` disables it.
    pub sweep_interval: Option<Duration>,
    /// The largest request body on any route, GraphQL included.
    pub max_body_bytes: usize,
    /// Verifies callers' bearer tokens.
    pub auth: Arc<Authenticator>,
    /// How long a request may run before it is answered 503.
    pub request_timeout: Duration,
    /// Rate limits per client and per customer; `None` turns them off.
    pub rate_limits: Option<RateLimits>,
    /// The secret payment notifications are signed with; `None`: payments are not configured.
    pub payments_webhook_secret: Option<Arc<secrecy::SecretString>>,
    /// `POST /api/dev/token` mints tokens for any name (development machines only).
    pub dev_login: bool,
}

impl Default for CommandApiConfig {
    /// Defaults with an authenticator nobody can mint for (a random secret): real servers
    /// configure one (see `seatgrid`'s `AUTH_*` settings), tests use [`crate::testing`].
    fn default() -> Self {
        let secret: [u8; 32] = std::array::from_fn(|_| rand::random());
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 5000)),
            policy: EventPolicy::default(),
            retry: RetryPolicy::default(),
            sweep_interval: Some(Duration::from_secs(5)),
            max_body_bytes: 64 * 1024,
            auth: Arc::new(Authenticator::hs256(&secret).expect("a 32-byte secret is a key")),
            request_timeout: Duration::from_secs(30),
            rate_limits: Some(RateLimits::default()),
            payments_webhook_secret: None,
            dev_login: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Migration(#[from] migrations::MigrationError),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

pub struct Application {
    listener: TcpListener,
    service: Arc<BookingService>,
    state: AppStateParts,
    sweep_interval: Option<Duration>,
    request_timeout: Duration,
    limiters: Option<Arc<Limiters>>,
    extra_routes: Router,
    /// False: health checks only ([`Self::health_only`]).
    serve_api: bool,
}

impl Application {
    pub async fn build(config: CommandApiConfig, pool: PgPool) -> Result<Self, StartupError> {
        Self::build_with_catalog(config, pool, Arc::default()).await
    }

    /// Like [`Self::build`], keeping ticketed events in `catalog` (shared with the process's other
    /// readers, so each layout is indexed once).
    pub async fn build_with_catalog(
        config: CommandApiConfig,
        pool: PgPool,
        catalog: Arc<EventCatalog>,
    ) -> Result<Self, StartupError> {
        migrations::run_postgres(&pool).await?;
        let store = EventStore::new(pool.clone(), config.retry);
        let service = Arc::new(BookingService::with_catalog(store, config.policy, catalog));
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .map_err(|e| StartupError::Bind(config.listen_addr, e))?;
        Ok(Self {
            listener,
            service: service.clone(),
            limiters: config.rate_limits.map(Limiters::new),
            state: AppStateParts {
                // Commands finish even when their client goes away (see `booking::detached`).
                service: Arc::new(RunToCompletion::new(service)),
                auth: config.auth,
                pool,
                max_body_bytes: config.max_body_bytes,
                projected: None,
                webhook_secret: config.payments_webhook_secret,
                dev_login: config.dev_login,
            },
            sweep_interval: config.sweep_interval,
            request_timeout: config.request_timeout,
            extra_routes: Router::new(),
            serve_api: true,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn service(&self) -> Arc<BookingService> {
        self.service.clone()
    }

    /// The commands as the adapters serve them: each runs to completion even if its caller
    /// leaves (for routes added beside the REST API, such as GraphQL).
    pub fn commands(&self) -> Arc<dyn BookingCommands> {
        self.state.service.clone()
    }

    /// Serves health checks only, no API (a process that runs only background roles), plus the
    /// routes given to [`Self::with_routes`].
    pub fn health_only(mut self) -> Self {
        self.serve_api = false;
        self
    }

    /// Serves `routes` (for example the GraphQL API) beside the REST API, on the same listener.
    pub fn with_routes(mut self, routes: Router) -> Self {
        self.extra_routes = self.extra_routes.merge(routes);
        self
    }

    /// Serves seat maps from the read side by default (see [`http::ProjectedSeatMaps`]).
    pub fn with_projected_seat_maps(mut self, source: Arc<dyn http::ProjectedSeatMaps>) -> Self {
        self.state.projected = Some(source);
        self
    }

    /// The authenticator the server verifies tokens with (for routes added beside it).
    pub fn auth(&self) -> Arc<Authenticator> {
        self.state.auth.clone()
    }

    pub fn pool(&self) -> &PgPool {
        &self.state.pool
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let sweeper = self
            .sweep_interval
            .map(|every| sweeper::spawn(self.service.clone(), every));
        let timeout = self.request_timeout;
        let (auth, max_body_bytes) = (self.state.auth.clone(), self.state.max_body_bytes);
        let state = AppState::new(self.state);
        let app = self.extra_routes.merge(if self.serve_api {
            http::router(state)
        } else {
            http::health_router(state)
        });
        let cleanup = self.limiters.as_ref().map(|l| l.spawn_cleanup());
        // Only what needs the matched route runs on the routes; every other layer wraps the
        // router once. (A layer on the routes is a boxed service that axum clones, with every
        // boxed service beneath it, for each request, and a `from_fn` layer clones its inner
        // service again: a stack of them on the routes cost a health check 40 allocations.)
        let app = app.layer(axum::middleware::from_fn_with_state(
            timeout,
            http::observability::on_route,
        ));
        let app = http::around_router(app, auth, self.limiters, max_body_bytes);
        let result = axum::serve(
            self.listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                SocketAddr,
            >(app),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        if let Some(task) = sweeper {
            task.abort();
        }
        if let Some(task) = cleanup {
            task.abort();
        }
        result
    }
}
