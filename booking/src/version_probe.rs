//! Version lookups shared by the requests that need one at the same time.
//!
//! Policy:
//! - A refusal answered from memory needs the aggregate's stored version read *after* the request
//!   arrived (then the memory it was judged on was the latest at that moment). In a crowd, hundreds
//!   of refusals need that lookup at once; they share it: a request waits for the next round that
//!   starts after it arrived, and one query answers every request of that round, for every
//!   aggregate asked about (the seat blocks of a whole venue). A round already running when a
//!   request arrives does not count for it.
//! - One round at a time per aggregate type, one after another while requests keep arriving, and
//!   rounds start at least [`MIN_ROUND_INTERVAL`] apart: a crowd costs at most one query per
//!   interval however many requests and blocks it spreads over (a refusal may wait that long for
//!   its round; under a crowd it would wait for a core longer). With nobody waiting, no round runs
//!   and nothing is held.
//! - A round asks about at most [`MAX_IDS_PER_ROUND`] aggregates; the rest wait for the next.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::persistence::stored_versions;

/// The least time between the starts of two rounds: at most 100 lookups a second under a crowd
/// (a flash sale's refusals cost PostgreSQL about 12 µs of CPU per request at 2 ms, 6-7 µs at
/// 5 ms, 3.3 µs at 10 ms; a refusal waits at most this long for its round, small beside a
/// crowd's queueing for a core).
pub const MIN_ROUND_INTERVAL: Duration = Duration::from_millis(10);

/// The most aggregates one round's query asks about.
pub const MAX_IDS_PER_ROUND: usize = 1_000;

type Waiters = Vec<oneshot::Sender<Result<usize, String>>>;

/// The requests waiting for the next round, and whether a round is running.
#[derive(Default)]
struct Pending {
    waiting: HashMap<String, Waiters>,
    running: bool,
}

/// The lookups of one aggregate type (clones share their rounds).
#[derive(Clone)]
pub struct VersionProbes {
    pool: PgPool,
    aggregate_type: &'static str,
    pending: Arc<Mutex<Pending>>,
    lookups: Arc<AtomicU64>,
}

impl VersionProbes {
    pub fn new(pool: PgPool, aggregate_type: &'static str) -> Self {
        Self {
            pool,
            aggregate_type,
            pending: Arc::default(),
            lookups: Arc::default(),
        }
    }

    /// Rounds run so far (each one query, answering every request waiting for it).
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    /// The aggregate's stored version, read after this call began.
    pub async fn stored_version(&self, id: &str) -> Result<usize, String> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut pending = self.pending.lock().expect("probe lock");
            pending.waiting.entry(id.to_owned()).or_default().push(tx);
            !std::mem::replace(&mut pending.running, true)
        };
        if start {
            tokio::spawn(self.clone().rounds());
        }
        rx.await
            .unwrap_or_else(|_| Err("the version lookup stopped".into()))
    }

    /// Runs rounds until nobody waits: each answers the requests that arrived before it started.
    async fn rounds(self) {
        let _stopped = StopGuard(self.pending.clone());
        let mut next_start = None;
        loop {
            // Requests arriving meanwhile join this round: they came before it started.
            if let Some(at) = next_start {
                tokio::time::sleep_until(at).await;
            }
            next_start = Some(tokio::time::Instant::now() + MIN_ROUND_INTERVAL);
            let (ids, waiters): (Vec<String>, Vec<Waiters>) = {
                let mut pending = self.pending.lock().expect("probe lock");
                if pending.waiting.is_empty() {
                    pending.running = false;
                    return;
                }
                let mut these: Vec<(String, Waiters)> = pending.waiting.drain().collect();
                if these.len() > MAX_IDS_PER_ROUND {
                    pending.waiting.extend(these.drain(MAX_IDS_PER_ROUND..));
                }
                these.into_iter().unzip()
            };
            self.lookups.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("seatgrid_version_probes_total").increment(1);
            match stored_versions(&self.pool, self.aggregate_type, &ids).await {
                Ok(versions) => {
                    for (waiters, version) in waiters.into_iter().zip(versions) {
                        for waiter in waiters {
                            let _ = waiter.send(Ok(version));
                        }
                    }
                }
                Err(e) => {
                    for waiter in waiters.into_iter().flatten() {
                        let _ = waiter.send(Err(e.to_string()));
                    }
                }
            }
        }
    }
}

/// If a round panics, the requests still waiting get an error and the next request starts rounds
/// again (none waits forever for a round that is gone).
struct StopGuard(Arc<Mutex<Pending>>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Ok(mut pending) = self.0.lock() {
                pending.waiting.clear();
                pending.running = false;
            }
        }
    }
}
