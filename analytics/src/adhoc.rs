//! Ad-hoc SQL from users, run only as ClickHouse's read-only `seatgrid_reader` user.
//!
//! Policy: two locks, one inside the other. SeatGrid accepts a single `SELECT` (or `WITH`,
//! `SHOW`, `DESCRIBE`, `EXISTS`) statement and refuses anything else before sending it. ClickHouse
//! then runs it as a user whose profile is `readonly = 1` with row, memory and time limits
//! (`scripts/clickhouse/users.xml`); whatever slips past the first check is refused by the server,
//! and a query over the limits is stopped there. Either refusal comes back as a clear error.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AdhocError {
    #[error("only a single read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXISTS) is allowed")]
    NotReadOnly,
    #[error("ClickHouse refused the query: {0}")]
    Refused(String),
    #[error("ClickHouse is unavailable: {0}")]
    Unavailable(String),
}

/// Sends SQL as the read-only user and returns the result as JSON lines (one object per row).
#[derive(Clone)]
pub struct AdhocSql {
    client: clickhouse::Client,
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
    /// `client` must log in as the read-only user.
    pub fn new(client: clickhouse::Client) -> Self {
        Self {
            client: client.with_setting("wait_end_of_query", "1"),
        }
    }

    pub async fn run(&self, sql: &str) -> Result<String, AdhocError> {
        let sql = check(sql)?;
        let query = self.client.query(sql);
        let fetch = async {
            let mut cursor = query.fetch_bytes("JSONEachRow")?;
            cursor.collect().await
        };
        match tokio::time::timeout(Duration::from_secs(30), fetch).await {
            Err(_) => Err(AdhocError::Refused("no answer within 30 s".into())),
            Ok(Ok(bytes)) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Ok(Err(clickhouse::error::Error::BadResponse(msg))) => Err(AdhocError::Refused(msg)),
            Ok(Err(e @ clickhouse::error::Error::Network(_))) => {
                Err(AdhocError::Unavailable(e.to_string()))
            }
            Ok(Err(e)) => Err(AdhocError::Refused(e.to_string())),
        }
    }
}
