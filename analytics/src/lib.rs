//! SeatGrid's analytics: every domain event streamed into ClickHouse ([`ingest`]), organizer
//! reports over it ([`reports`]), and read-only ad-hoc SQL ([`adhoc`]).
//!
//! Everything sent to ClickHouse runs on Debian's 18.16 and on current ClickHouse: no
//! `DateTime64`, no server-side parameters, `FINAL` instead of insert deduplication, validation off
//! in the client (it needs a format 18.16 lacks).

pub mod adhoc;
pub mod ingest;
pub mod reports;
pub mod rows;

pub use adhoc::{AdhocError, AdhocSql};
pub use ingest::{IngestConfig, Ingester, CLICKHOUSE_STREAM};
pub use reports::Reports;
pub use rows::EventRow;

/// Where ClickHouse is and who to be there.
#[derive(Debug, Clone)]
pub struct ClickHouseConfig {
    /// HTTP interface, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    pub database: String,
    pub user: String,
    pub password: String,
    /// The read-only user for ad-hoc SQL.
    pub reader_user: String,
    pub reader_password: String,
}

impl ClickHouseConfig {
    fn client(&self, user: &str, password: &str) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(&self.url)
            .with_user(user)
            .with_password(password)
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
