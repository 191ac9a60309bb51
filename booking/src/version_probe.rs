//! Version lookups shared by the requests that need one at the same time.
//!
//! Policy:
//! - A refusal answered from memory needs the aggregate's stored version read *after* the request
//!   arrived (then the memory it was judged on was the latest at that moment). In a crowd, hundreds
//!   of refusals of one seat block need that lookup at once; they share it: requests for one
//!   aggregate wait for the next lookup that starts after they arrived, and one query answers all
//!   of them. A lookup already running when a request arrives does not count for it.
//! - Rounds run one after another per aggregate while requests keep arriving; an aggregate with
//!   nobody waiting holds no memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::persistence::stored_version;

type Waiters = Vec<oneshot::Sender<Result<usize, String>>>;

/// The lookups of one aggregate type (clones share their rounds).
#[derive(Clone)]
pub struct VersionProbes {
    pool: PgPool,
    aggregate_type: &'static str,
    /// Per aggregate: the requests waiting for the next round (present while a round runs).
    waiting: Arc<Mutex<HashMap<String, Waiters>>>,
    lookups: Arc<AtomicU64>,
}

impl VersionProbes {
    pub fn new(pool: PgPool, aggregate_type: &'static str) -> Self {
        Self {
            pool,
            aggregate_type,
            waiting: Arc::default(),
            lookups: Arc::default(),
        }
    }

    /// Lookups run so far (each answered every request waiting for it).
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    /// The aggregate's stored version, read after this call began.
    pub async fn stored_version(&self, id: &str) -> Result<usize, String> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut waiting = self.waiting.lock().expect("probe lock");
            match waiting.get_mut(id) {
                // A round is running: wait for the next one, which it starts when it ends.
                Some(next) => {
                    next.push(tx);
                    None
                }
                None => {
                    waiting.insert(id.to_owned(), Vec::new());
                    Some(tx)
                }
            }
        };
        if let Some(first) = start {
            tokio::spawn(rounds(
                self.pool.clone(),
                self.aggregate_type,
                id.to_owned(),
                (self.waiting.clone(), self.lookups.clone()),
                vec![first],
            ));
        }
        rx.await
            .unwrap_or_else(|_| Err("the version lookup stopped".into()))
    }
}

/// Runs lookups for `id` until nobody waits: each answers the requests that arrived before it
/// started.
async fn rounds(
    pool: PgPool,
    aggregate_type: &'static str,
    id: String,
    (waiting, lookups): (Arc<Mutex<HashMap<String, Waiters>>>, Arc<AtomicU64>),
    mut these: Waiters,
) {
    loop {
        lookups.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("seatgrid_version_probes_total").increment(1);
        let version = stored_version(&pool, aggregate_type, &id)
            .await
            .map_err(|e| e.to_string());
        for waiter in these.drain(..) {
            let _ = waiter.send(version.clone());
        }
        let mut waiting = waiting.lock().expect("probe lock");
        match waiting.get_mut(&id) {
            Some(next) if !next.is_empty() => these = std::mem::take(next),
            _ => {
                waiting.remove(&id);
                return;
            }
        }
    }
}
