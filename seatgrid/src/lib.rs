//! The `seatgrid` binary's library: the command line, logging set-up, and running the components
//! (command API, sweeper, projector, GraphQL API) in one process ([`system`]).

pub mod auth;
pub mod config;
pub mod database;
pub mod leadership;
pub mod order_process;
pub mod payment_provider;
pub mod payment_relay;
pub mod payments_mock;
pub mod report;
pub mod roles;
pub mod system;
pub mod telemetry;

use std::time::Duration;

use anyhow::Context as _;
use booking::{BookingCommands, Caller, RequestContext, Role};
use clap::{Parser, Subcommand};
use domain::{CustomerId, FocalPoint, LayoutSpec, NewEvent, PriceTier, RowSpec, SectionSpec};
use projections::ReadModelProjection;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use system::System;

use config::Settings;

#[derive(Debug, Parser)]
#[command(
    name = "seatgrid",
    version,
    about = "SeatGrid: seat holds and bookings for flash sales"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default). Applies migrations first.
    Serve {
        /// Create the demo event if it does not exist yet, and print its URLs.
        #[arg(long)]
        seed_demo: bool,
        /// What this process does: `all` (the default, or SEATGRID_ROLES), or some of api,
        /// projector, ingester, sweeper, payments. Singleton roles run in one process at a time.
        #[arg(long)]
        roles: Option<roles::Roles>,
    },
    /// Create the database if needed and apply migrations, then exit.
    Migrate,
    /// Print the organizer reports of one ticketed event (from ClickHouse) as tables.
    Report {
        /// The ticketed event's id.
        event_id: uuid::Uuid,
        /// Print the SQL of each report instead of running it.
        #[arg(long)]
        sql: bool,
        /// Rows per list report (hot seats, top customers).
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
    /// Run one read-only SQL statement as ClickHouse's read-only user (row and time limits apply).
    Sql {
        /// For example: "SELECT event_type, count() FROM domain_events FINAL GROUP BY event_type"
        query: String,
    },
    /// Mint a bearer token from the development secret (AUTH_HS256_SECRET) and print it.
    Token {
        /// The subject: the customer (or organizer) the token names.
        #[arg(long)]
        sub: String,
        /// buyer, organizer or admin.
        #[arg(long, default_value = "buyer", value_parser = ["buyer", "organizer", "admin"])]
        role: String,
        /// How long the token is valid, in hours.
        #[arg(long, default_value_t = 24)]
        hours: u64,
    },
    /// Run the development payment provider as its own process (settings: PAYMENTS_MOCK_*, and
    /// PAYMENTS_WEBHOOK_SECRET to sign its webhooks).
    PaymentsMock,
    /// Drop a projection's read model and replay it from the first event. A running server keeps
    /// serving meanwhile and its projector replays (this command only resets).
    Rebuild {
        /// The projection to rebuild.
        #[arg(default_value = projections::READ_MODELS, value_parser = [projections::READ_MODELS])]
        projection: String,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(Command::PaymentsMock) = cli.command {
        // Its own process with its own settings: none of the server's are needed.
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
        let (settings, secret) = payments_mock::MockSettings::from_env()?;
        return Ok(payments_mock::serve(settings, secret).await?);
    }
    let settings = Settings::from_env()?;
    let telemetry = telemetry::init(settings.app.log_format)?;
    let result = run_command(cli, settings, &telemetry).await;
    telemetry.shutdown();
    result
}

async fn run_command(
    cli: Cli,
    settings: Settings,
    telemetry: &telemetry::Telemetry,
) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve {
        seed_demo: false,
        roles: None,
    }) {
        Command::Migrate => {
            let pool = connect(&settings).await?;
            migrations::run_postgres(&pool).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Serve { seed_demo, roles } => {
            let mut settings = settings;
            if let Some(roles) = roles {
                settings.app.roles = roles;
            }
            serve(settings, seed_demo, telemetry).await
        }
        Command::PaymentsMock => unreachable!("run() serves the payments mock before this"),
        Command::Rebuild { projection } => rebuild(settings, &projection).await,
        Command::Token { sub, role, hours } => {
            CustomerId::parse(&sub).map_err(|e| anyhow::anyhow!("--sub: {e}"))?;
            let role = Role::parse(&role).context("--role must be buyer, organizer or admin")?;
            let token = settings.auth.minter()?.mint(
                &sub,
                role,
                Duration::from_secs(hours.saturating_mul(3600)),
            )?;
            println!("{token}");
            Ok(())
        }
        Command::Report {
            event_id,
            sql,
            limit,
        } => report::print(clickhouse(&settings)?, event_id, sql, limit).await,
        Command::Sql { query } => {
            // An operator's tool (it needs the server's credentials): every row.
            let ch = clickhouse(&settings)?;
            let out = analytics::AdhocSql::new(ch.reader(), &ch.database)
                .run(&query, &analytics::Scope::All)
                .await?;
            print!("{out}");
            Ok(())
        }
    }
}

async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    Ok(database(settings).await?.pool)
}

/// How long a starting server waits for one of `DATABASE_URL`'s hosts to accept writes (a Patroni
/// pair electing its leader).
const PRIMARY_WAIT: Duration = Duration::from_secs(30);

async fn database(settings: &Settings) -> anyhow::Result<database::Database> {
    database::Database::connect(
        settings.database_url.expose_secret(),
        limits(&settings.app),
        PRIMARY_WAIT,
    )
    .await
}

fn limits(app: &config::AppSettings) -> database::PoolLimits {
    database::PoolLimits {
        max_connections: app.db_max_connections,
        acquire_timeout: Duration::from_millis(app.db_acquire_timeout_ms),
        statement_timeout: Duration::from_millis(app.db_statement_timeout_ms),
    }
}

/// The server's PostgreSQL pool, with its time limits: no statement runs longer than
/// `SEATGRID_DB_STATEMENT_TIMEOUT_MS`, and a request that cannot get a connection within
/// `SEATGRID_DB_ACQUIRE_TIMEOUT_MS` is answered 503 with `Retry-After` instead of waiting.
///
/// Connections are not pinged before each use (sqlx's default): the ping was a round trip per
/// statement, 5 % of the server's CPU under the durable-holds benchmark. A connection that died is
/// found by the statement that fails on it, which is answered like any unavailable store.
/// `DATABASE_URL` may name several hosts ([`database`]).
pub async fn pool(url: &str, app: &config::AppSettings) -> anyhow::Result<PgPool> {
    Ok(database::Database::connect(url, limits(app), PRIMARY_WAIT)
        .await?
        .pool)
}

fn clickhouse(settings: &Settings) -> anyhow::Result<&analytics::ClickHouseConfig> {
    settings
        .clickhouse
        .as_ref()
        .context("CLICKHOUSE_URL is off: analytics need ClickHouse")
}

async fn rebuild(settings: Settings, projection: &str) -> anyhow::Result<()> {
    let pool = connect(&settings).await?;
    migrations::run_postgres(&pool).await?;
    match projection {
        projections::READ_MODELS => {
            projections::reset(&pool, &ReadModelProjection::new(None)).await?;
        }
        other => anyhow::bail!("no projection named {other}"),
    }
    // Cached copies need no flush: replayed rows get newer versions, which outdate them.
    println!("{projection}: reset to the first event; a running server replays it now");
    Ok(())
}

async fn serve(
    settings: Settings,
    seed_demo: bool,
    telemetry: &telemetry::Telemetry,
) -> anyhow::Result<()> {
    let mut config = settings.system();
    config.command.auth = settings.auth.authenticator().await?;
    let database = database(&settings).await?;
    let app = System::build(config, database.pool.clone(), Some(telemetry.metrics())).await?;
    tokio::spawn(database.follower(app.pools()));
    let base = format!("http://{}", app.local_addr());
    println!("SeatGrid is up at {base}");
    println!("  roles         {}", settings.app.roles);
    println!("  pages         {base}/  (events and seat maps; {base}/organizer for organizers)");
    if settings.app.dev_login == "on" {
        println!(
            "  sign in       {base}/login  (development sign-in: any name, buyer or organizer)"
        );
    }
    println!("  REST API      {base}/api  (OpenAPI: {base}/api/openapi.json, browsable at {base}/api/docs)");
    println!("  GraphQL       {base}/graphql  (GraphiQL in a browser; subscriptions: ws://{}/graphql/ws)", app.local_addr());
    println!("  health        {base}/health/live  {base}/health/ready");
    println!("  metrics       {base}/metrics");
    match &settings.payments_provider_url {
        Some(url) => println!(
            "  payments      orders are paid through {url}  (webhook: {base}/api/payments/webhook)"
        ),
        None => println!(
            "  payments      off (set PAYMENTS_PROVIDER_URL and PAYMENTS_WEBHOOK_SECRET): orders expire unpaid"
        ),
    }
    if seed_demo {
        let event = app
            .service()
            .create_event(
                demo_event(),
                &Caller::new(demo_organizer(), Role::Organizer),
                &RequestContext {
                    correlation_id: "seed-demo".into(),
                    id_seed: Some("seatgrid-demo-event".into()),
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("cannot seed the demo event: {e}"))?;
        println!(
            "  demo event    {base}/events/{}  ({} seats; REST: {base}/api/events/{})",
            event.id, event.seat_count, event.id
        );
        println!(
            "  its dashboard {base}/organizer/events/{}  (sign in as {})",
            event.id,
            demo_organizer().as_str()
        );
        println!("  its seat map  {base}/api/events/{}/seats", event.id);
        // Ready tokens, when the server has the development secret.
        if let Ok(minter) = settings.auth.minter() {
            let day = Duration::from_secs(24 * 3600);
            let organizer = minter.mint(demo_organizer().as_str(), Role::Organizer, day)?;
            let buyer = minter.mint("alice", Role::Buyer, day)?;
            println!("  organizer token (manages the demo event, 24 h):\n    {organizer}");
            println!("  buyer token (alice, 24 h):\n    {buyer}");
            println!("  more tokens:  scripts/token --sub bob --role buyer   (organizer, admin)");
        }
    }
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}

/// The organizer of the demo event.
pub fn demo_organizer() -> CustomerId {
    CustomerId::parse("demo-organizer").expect("a valid customer id")
}

/// The demo event `scripts/up` seeds: two sections at two prices.
pub fn demo_event() -> NewEvent {
    let rows = |labels: &[&str], seats| {
        labels
            .iter()
            .map(|l| RowSpec {
                label: (*l).to_owned(),
                seats,
            })
            .collect()
    };
    NewEvent {
        organizer: None,
        name: "SeatGrid Demo Night".into(),
        venue: Some("Demo Arena".into()),
        starts_at: None,
        currency: Some("EUR".into()),
        layout: LayoutSpec {
            price_tiers: vec![
                PriceTier {
                    name: "Premium".into(),
                    price_cents: 9_000,
                },
                PriceTier {
                    name: "Standard".into(),
                    price_cents: 4_500,
                },
            ],
            sections: vec![
                SectionSpec {
                    name: "Orchestra".into(),
                    price_tier: "Premium".into(),
                    rows: rows(&["A", "B", "C", "D", "E", "F", "G", "H", "J", "K"], 20),
                },
                SectionSpec {
                    name: "Balcony".into(),
                    price_tier: "Standard".into(),
                    rows: rows(&["1", "2", "3", "4", "5"], 30),
                },
            ],
            // The best seats: a few rows back from the stage, in the centre.
            focal_point: Some(FocalPoint {
                section: Some("Orchestra".into()),
                row_index: 3,
                across_percent: 50,
            }),
        },
        hold_seconds: None,
        max_seats_per_customer: None,
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
