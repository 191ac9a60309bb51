//! SeatGrid's database schema, applied automatically at start and by `seatgrid migrate`.
//!
//! Policy: migrations are embedded in the binary and only ever added, never edited once released;
//! sqlx records each applied one (with a checksum) and takes an advisory lock, so several processes
//! starting at once apply each migration exactly once.
//!
//! ClickHouse (`clickhouse/*.sql`, one statement per file) has no such ledger on 18.16; its
//! statements are written to be re-run safely (`IF NOT EXISTS`) and are all applied at every start.

pub mod global_order;
pub mod transaction;

use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::{PgPool, Postgres};

static POSTGRES: Migrator = sqlx::migrate!("./postgres");

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("cannot create database: {0}")]
    CreateDatabase(#[source] sqlx::Error),
    #[error("cannot apply Postgres migrations: {0}")]
    Apply(#[from] sqlx::migrate::MigrateError),
    #[error("invalid ClickHouse database name {0:?}: use letters, digits and _")]
    ClickHouseName(String),
    #[error("cannot apply ClickHouse migration {0}: {1}")]
    ClickHouse(&'static str, #[source] clickhouse::error::Error),
}

/// The ClickHouse schema, in order.
const CLICKHOUSE: &[(&str, &str)] = &[(
    "0001_domain_events",
    include_str!("../clickhouse/0001_domain_events.sql"),
)];

/// Creates `database` on the ClickHouse server `client` points at (if needed) and applies the
/// ClickHouse schema in it.
pub async fn run_clickhouse(
    client: &clickhouse::Client,
    database: &str,
) -> Result<(), MigrationError> {
    if database.is_empty()
        || !database
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(MigrationError::ClickHouseName(database.to_owned()));
    }
    client
        .query(&format!("CREATE DATABASE IF NOT EXISTS {database}"))
        .execute()
        .await
        .map_err(|e| MigrationError::ClickHouse("create database", e))?;
    let in_db = client.clone().with_database(database);
    for (name, sql) in CLICKHOUSE {
        in_db
            .query(sql)
            .execute()
            .await
            .map_err(|e| MigrationError::ClickHouse(name, e))?;
    }
    Ok(())
}

/// The sharded analytics layout: the tables in every shard's database, then in `database` a
/// `Distributed` table over `cluster`, whose shards use those databases (`analytics::Sharding`).
pub async fn run_clickhouse_sharded(
    client: &clickhouse::Client,
    database: &str,
    cluster: &str,
    shard_databases: &[String],
) -> Result<(), MigrationError> {
    let named = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    for name in [database, cluster] {
        if !named(name) {
            return Err(MigrationError::ClickHouseName(name.to_owned()));
        }
    }
    let Some(first) = shard_databases.first() else {
        return Err(MigrationError::ClickHouseName(
            "no shard databases".to_owned(),
        ));
    };
    for shard in shard_databases {
        run_clickhouse(client, shard).await?;
    }
    client
        .query(&format!("CREATE DATABASE IF NOT EXISTS {database}"))
        .execute()
        .await
        .map_err(|e| MigrationError::ClickHouse("create database", e))?;
    client
        .query(&format!(
            "CREATE TABLE IF NOT EXISTS {database}.domain_events AS {first}.domain_events
             ENGINE = Distributed({cluster}, '', domain_events, cityHash64(event_id))"
        ))
        .execute()
        .await
        .map_err(|e| MigrationError::ClickHouse("create distributed table", e))?;
    Ok(())
}

/// Creates the database named in `database_url` if it does not exist yet.
pub async fn ensure_database(database_url: &str) -> Result<(), MigrationError> {
    if !Postgres::database_exists(database_url)
        .await
        .map_err(MigrationError::CreateDatabase)?
    {
        tracing::info!("creating database");
        if let Err(e) = Postgres::create_database(database_url).await {
            // Another process may have created it meanwhile.
            if !Postgres::database_exists(database_url)
                .await
                .unwrap_or(false)
            {
                return Err(MigrationError::CreateDatabase(e));
            }
        }
    }
    Ok(())
}

/// Applies every Postgres migration not applied yet.
pub async fn run_postgres(pool: &PgPool) -> Result<(), MigrationError> {
    POSTGRES.run(pool).await?;
    Ok(())
}

/// Fresh, migrated databases for tests: each call creates a new database on the server named by
/// `DATABASE_URL` (default: the local server). `scripts/test` drops them all before a run.
#[cfg(feature = "testing")]
pub mod testing {
    use sqlx::postgres::PgPoolOptions;
    use sqlx::PgPool;

    pub const TEST_DATABASE_PREFIX: &str = "seatgrid_test_";

    pub fn server_url() -> String {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        match url.rsplit_once('/') {
            Some((server, _db)) if server.contains("://") && !server.ends_with('/') => {
                server.into()
            }
            _ => url,
        }
    }

    /// Creates and migrates a new database; returns its URL and a pool of `max_connections`.
    pub async fn fresh_database(max_connections: u32) -> (String, PgPool) {
        let name = format!("{TEST_DATABASE_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let url = format!("{}/{name}", server_url());
        super::ensure_database(&url)
            .await
            .expect("create test database");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(&url)
            .await
            .expect("connect to test database");
        super::run_postgres(&pool)
            .await
            .expect("migrate test database");
        (url, pool)
    }

    /// Whether two statements in a row on `pool` run in one transaction, as they do when a
    /// transaction was left open on its (only) connection: on their own, each gets a transaction
    /// id of its own.
    pub async fn inside_an_open_transaction(pool: &PgPool) -> bool {
        let xid = || async {
            sqlx::query_scalar::<_, String>("SELECT pg_current_xact_id()::text")
                .fetch_one(pool)
                .await
                .expect("a transaction id")
        };
        xid().await == xid().await
    }

    /// Runs `work` as a caller that leaves early: on even turns after polling it once, on odd
    /// turns after `patience` (the timer's granularity is 1 ms). True if the caller left before
    /// `work` ended; what `work` returned in time is dropped at once.
    pub async fn leave_early<F: std::future::Future>(
        turn: u64,
        patience: std::time::Duration,
        work: F,
    ) -> bool {
        if turn.is_multiple_of(2) {
            tokio::select! {
                biased;
                _ = work => false,
                _ = std::future::ready(()) => true,
            }
        } else {
            tokio::time::timeout(patience, work).await.is_err()
        }
    }
}
