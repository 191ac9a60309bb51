//! Ad-hoc SQL from users, run only as ClickHouse's read-only `seatgrid_reader` user.
//!
//! Policy: two locks, one inside the other. SeatGrid accepts a single `SELECT` (or `WITH`,
//! `SHOW`, `DESCRIBE`, `EXISTS`) statement and refuses anything else before sending it. ClickHouse
//! then runs it as a user whose profile is `readonly = 1` with row, memory and time limits
//! (`scripts/clickhouse/users.xml`); whatever slips past the first check is refused by the server,
//! and a query over the limits is stopped there. Either refusal comes back as a clear error.
//! An organizer's query is confined to their own events' rows first ([`crate::scope`]). Results
//! are capped at [`MAX_RESULT_BYTES`] here too, whatever the server's profile says.

use std::time::Duration;

use crate::scope::{confine, Scope};

/// The most result bytes one ad-hoc query may return.
pub const MAX_RESULT_BYTES: usize = 8 * 1024 * 1024;
/// How long one ad-hoc query may take, end to end.
pub const TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum AdhocError {
    #[error("only a single read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXISTS) is allowed")]
    NotReadOnly,
    #[error("ClickHouse refused the query: {0}")]
    Refused(String),
    #[error("ClickHouse is unavailable: {0}")]
    Unavailable(String),
}

impl From<crate::scope::OutOfScope> for AdhocError {
    fn from(e: crate::scope::OutOfScope) -> Self {
        Self::Refused(e.0)
    }
}

/// Sends SQL as the read-only user and returns the result as JSON lines (one object per row).
#[derive(Clone)]
pub struct AdhocSql {
    client: clickhouse::Client,
    database: String,
}

const READ_ONLY_STARTS: &[&str] = &["select", "with", "show", "describe", "desc", "exists"];

/// The statement, trimmed of one trailing `;`, if it looks like a single read-only statement.
pub fn check(sql: &str) -> Result<&str, AdhocError> {
    let sql = sql.trim();
    let sql = sql.strip_suffix(';').unwrap_or(sql).trim_end();
    let first = sql
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if sql.is_empty() || sql.contains(';') || !READ_ONLY_STARTS.contains(&first.as_str()) {
        return Err(AdhocError::NotReadOnly);
    }
    Ok(sql)
}

impl AdhocSql {
    /// `client` must log in as the read-only user; `database` is SeatGrid's.
    pub fn new(client: clickhouse::Client, database: &str) -> Self {
        Self {
            // The time limit is the profile's (`readonly = 1` forbids setting it per query).
            client: client.with_setting("wait_end_of_query", "1"),
            database: database.to_owned(),
        }
    }

    /// Runs `sql` over the rows `scope` allows.
    pub async fn run(&self, sql: &str, scope: &Scope) -> Result<String, AdhocError> {
        let sql = confine(check(sql)?, &self.database, scope)?;
        let query = self.client.query(&sql);
        let fetch = async {
            let mut cursor = query.fetch_bytes("JSONEachRow")?;
            let mut out = Vec::new();
            while let Some(chunk) = cursor.next().await? {
                if out.len() + chunk.len() > MAX_RESULT_BYTES {
                    return Ok(None);
                }
                out.extend_from_slice(&chunk);
            }
            Ok(Some(out))
        };
        match tokio::time::timeout(TIMEOUT + Duration::from_secs(1), fetch).await {
            Err(_) => Err(AdhocError::Refused(format!(
                "no answer within {} s",
                TIMEOUT.as_secs()
            ))),
            Ok(Ok(None)) => Err(AdhocError::Refused(format!(
                "the result is larger than {MAX_RESULT_BYTES} bytes; aggregate or add a LIMIT"
            ))),
            Ok(Ok(Some(bytes))) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Ok(Err(clickhouse::error::Error::BadResponse(msg))) => Err(AdhocError::Refused(msg)),
            Ok(Err(e @ clickhouse::error::Error::Network(_))) => {
                Err(AdhocError::Unavailable(e.to_string()))
            }
            Ok(Err(e)) => Err(AdhocError::Refused(e.to_string())),
        }
    }
}
