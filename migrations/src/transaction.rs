//! Opening a transaction on a pooled connection so that dropping the caller cannot leave it open.
//!
//! Policy: every transaction of SeatGrid's own code starts with [`begin`], never with
//! `Pool::begin` (clippy's `disallowed-methods` in `clippy.toml` refuses it). sqlx 0.8 counts a
//! transaction as begun only once PostgreSQL has answered the `BEGIN`; a future dropped while that
//! answer is on its way (a request whose client left, a task aborted at shutdown or on a lost
//! leadership) hands the connection back to the pool with a transaction open that nobody will
//! end. Every later statement on that connection then runs inside it: its locks are held (a
//! `TRUNCATE` of the read models waited forever behind one in a test), and what it writes
//! stays invisible until some later `COMMIT` on that connection, or is lost with the connection.
//! [`begin`] runs the `BEGIN` on a task of its own: a caller that leaves stops only the waiting,
//! and the finished transaction, dropped unused, is rolled back before its connection is reused.
//! The cqrs-es aggregates' appends (postgres-es opens its transactions itself) are run the same
//! way by the event store (`booking::store`).

use sqlx::{PgPool, Postgres, Transaction};
use tracing::Instrument;

/// A new transaction on a connection of `pool`, begun on a task of its own (see the module policy).
pub async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let pool = pool.clone();
    // The one place that may call `Pool::begin`: on this task its BEGIN cannot be cut short.
    #[allow(clippy::disallowed_methods)]
    let begun = tokio::spawn(async move { pool.begin().await }.in_current_span());
    begun
        .await
        .map_err(|e| sqlx::Error::Io(std::io::Error::other(format!("BEGIN task failed: {e}"))))?
}
