//! SeatGrid's analytics: every domain event streamed into ClickHouse ([`ingest`]), organizer
//! reports over it ([`reports`]), and read-only ad-hoc SQL ([`adhoc`], confined by [`scope`]).
//!
//! Everything sent to ClickHouse runs on Debian's 18.16 and on current ClickHouse: no
//! `DateTime64`, no server-side parameters, `FINAL` instead of insert deduplication, validation off
//! in the client (it needs a format 18.16 lacks).

pub mod adhoc;
pub mod ingest;
pub mod reports;
pub mod rows;
pub mod scope;

pub use adhoc::{AdhocError, AdhocSql};
pub use ingest::{IngestConfig, Ingester, CLICKHOUSE_STREAM};
pub use reports::Reports;
pub use rows::EventRow;
pub use scope::Scope;

use secrecy::{ExposeSecret, SecretString};

/// Where ClickHouse is and who to be there. Passwords are secrets: `Debug` never prints them.
#[derive(Debug, Clone)]
pub struct ClickHouseConfig {
    /// HTTP interface, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    pub database: String,
    pub user: String,
    pub password: SecretString,
    /// The read-only user for ad-hoc SQL.
    pub reader_user: String,
    pub reader_password: SecretString,
    /// `None`: one server holds `domain_events`. `Some`: the table is spread over a cluster's
    /// shards ([`Sharding`]) and `database` holds a `Distributed` table over them.
    pub sharding: Option<Sharding>,
}

/// The sharded layout (`CLICKHOUSE_CLUSTER`, `CLICKHOUSE_SHARD_DATABASES`).
///
/// Policy: each shard keeps its own `domain_events` (the same `ReplacingMergeTree`), in the
/// database the cluster definition names as that shard's `default_database`; `database` holds a
/// `Distributed` table of the same name over them, sharded by `cityHash64(event_id)`, so one
/// event's rows, and every copy of a re-sent row, land on one shard and `FINAL` still keeps one of
/// each. Reports and ad-hoc SQL read the `Distributed` table unchanged. Inserts wait until every
/// shard has its rows (`insert_distributed_sync`), so the ingester's checkpoint never passes rows
/// still queued on the way to a shard. Works on 18.16 and current ClickHouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sharding {
    /// The cluster's name in the server's `remote_servers` configuration.
    pub cluster: String,
    /// Every shard's database, as the cluster definition names them (created here if missing,
    /// when the shards are reachable from this server's client: the local test cluster).
    pub shard_databases: Vec<String>,
}

impl ClickHouseConfig {
    fn client(&self, user: &str, password: &SecretString) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(&self.url)
            .with_user(user)
            .with_password(password.expose_secret())
            .with_validation(false)
    }

    /// A client of the analytics database, as the writing user.
    pub fn writer(&self) -> clickhouse::Client {
        let client = self
            .client(&self.user, &self.password)
            .with_database(&self.database);
        match self.sharding {
            Some(_) => client.with_setting("insert_distributed_sync", "1"),
            None => client,
        }
    }

    /// A client of the analytics database, as the read-only user.
    pub fn reader(&self) -> clickhouse::Client {
        self.client(&self.reader_user, &self.reader_password)
            .with_database(&self.database)
    }

    /// Creates the database and applies the ClickHouse schema.
    pub async fn migrate(&self) -> Result<(), migrations::MigrationError> {
        let client = self.client(&self.user, &self.password);
        match &self.sharding {
            None => migrations::run_clickhouse(&client, &self.database).await,
            Some(s) => {
                migrations::run_clickhouse_sharded(
                    &client,
                    &self.database,
                    &s.cluster,
                    &s.shard_databases,
                )
                .await
            }
        }
    }
}

/// ClickHouse for tests and benchmarks: the server named by `CLICKHOUSE_URL` (default: the local
/// one the project's scripts start), as `default` without a password, with the read-only
/// `seatgrid_test_reader` that server's users file defines (`seatgrid_reader`'s profile, without
/// its `allow_databases`, since test databases have random names).
#[cfg(feature = "testing")]
pub mod testing {
    use super::ClickHouseConfig;

    pub fn server_url() -> String {
        std::env::var("CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
    }

    /// `database` on the server at `url`.
    pub fn config(url: &str, database: &str) -> ClickHouseConfig {
        ClickHouseConfig {
            url: url.to_owned(),
            database: database.to_owned(),
            user: "default".into(),
            password: String::new().into(),
            reader_user: "seatgrid_test_reader".into(),
            reader_password: String::from("seatgrid_test_reader").into(),
            sharding: None,
        }
    }

    /// A database of its own (created by [`ClickHouseConfig::migrate`]) on the server at `url`.
    pub fn fresh_config(url: &str) -> ClickHouseConfig {
        config(
            url,
            &format!("seatgrid_test_{}", uuid::Uuid::new_v4().simple()),
        )
    }
}
