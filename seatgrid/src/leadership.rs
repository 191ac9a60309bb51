//! Leadership of the singleton roles ([`crate::roles::Singleton`]): one PostgreSQL session advisory
//! lock per role, held by the process that runs it.
//!
//! Policy:
//! - A process given a singleton role opens one connection of its own for it and asks for the
//!   role's lock (`pg_try_advisory_lock`) every [`LeaderConfig::retry`] until it has it; then it
//!   runs the role. The lock lives as long as that session: when the leader dies (`kill -9`), its
//!   socket closes, PostgreSQL ends the session and frees the lock, and a standby takes over at its
//!   next try (within `retry`, 1 s by default).
//! - The leader checks its lock's connection every [`LeaderConfig::check`]; when it fails, the role
//!   is stopped at once (another process may hold the lock by then) and the process competes
//!   again. A role that ends on its own is started again the same way.
//! - Correctness does not rest on the lock: every projection advances its checkpoint only from
//!   where it read it, in the transaction of its writes, so even two runners at once apply no event
//!   twice; the lock keeps each role's work in one process.
//! - `seatgrid_leader{role}` is 1 in the process that leads the role, 0 in its standbys.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};

use crate::roles::Singleton;

/// Starts one run of a role (a fresh runner each time the process takes the lead).
pub type RoleWork = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

#[derive(Debug, Clone, Copy)]
pub struct LeaderConfig {
    /// How often a standby asks for the lock.
    pub retry: Duration,
    /// How often the leader checks its lock's connection.
    pub check: Duration,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        Self {
            retry: Duration::from_secs(1),
            check: Duration::from_secs(1),
        }
    }
}

/// Competes for `role` forever: runs `work` while this process holds the role's lock.
pub async fn lead(pool: PgPool, role: Singleton, config: LeaderConfig, work: RoleWork) {
    let name = role.name();
    metrics::gauge!("seatgrid_leader", "role" => name).set(0.0);
    loop {
        // The pool's current options: they follow a moving primary.
        let options = pool.connect_options();
        let Some(mut session) = take_lock(&options, role, config).await else {
            continue;
        };
        tracing::info!(role = name, "took the lead");
        metrics::gauge!("seatgrid_leader", "role" => name).set(1.0);
        let mut running = AbortOnDrop(tokio::spawn(work()));
        loop {
            tokio::select! {
                _ = &mut running.0 => {
                    tracing::warn!(role = name, "the role stopped; starting it again");
                    break;
                }
                () = tokio::time::sleep(config.check) => {}
            }
            let alive = tokio::time::timeout(
                config.check * 2,
                sqlx::query("SELECT 1").execute(&mut session),
            )
            .await;
            if !matches!(alive, Ok(Ok(_))) {
                tracing::warn!(
                    role = name,
                    "lost the connection that holds the lead; stopping the role"
                );
                break;
            }
        }
        drop(running);
        metrics::gauge!("seatgrid_leader", "role" => name).set(0.0);
        // Closing the session frees the lock, if PostgreSQL has not already.
        drop(session);
        tokio::time::sleep(config.retry).await;
    }
}

/// The role's task, stopped when this is dropped: also when the leadership task itself is
/// aborted (the process shutting down).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A session that holds `role`'s lock; `None` after a connection error (the caller tries again).
async fn take_lock(
    options: &PgConnectOptions,
    role: Singleton,
    config: LeaderConfig,
) -> Option<PgConnection> {
    let mut session = match PgConnection::connect_with(options).await {
        Ok(session) => session,
        Err(e) => {
            tracing::warn!(role = role.name(), error = %e, "cannot reach PostgreSQL to compete for the lead");
            tokio::time::sleep(config.retry).await;
            return None;
        }
    };
    loop {
        let taken = sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
            .bind(role.lock_key())
            .fetch_one(&mut session)
            .await;
        match taken {
            Ok(true) => return Some(session),
            Ok(false) => tokio::time::sleep(config.retry).await,
            Err(e) => {
                tracing::warn!(role = role.name(), error = %e, "lost PostgreSQL while standing by");
                tokio::time::sleep(config.retry).await;
                return None;
            }
        }
    }
}
