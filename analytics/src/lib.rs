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
        self.client(&self.user, &self.password)
            .with_database(&self.database)
    }

    /// A client of the analytics database, as the read-only user.
    pub fn reader(&self) -> clickhouse::Client {
        self.client(&self.reader_user, &self.reader_password)
            .with_database(&self.database)
    }

    /// Creates the database and applies the ClickHouse schema.
    pub async fn migrate(&self) -> Result<(), migrations::MigrationError> {
        migrations::run_clickhouse(&self.client(&self.user, &self.password), &self.database).await
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
