//! Reads joined while in flight: concurrent requests for one key share one read.
//!
//! Policy:
//! - A request for a key whose read is in flight waits for that read instead of starting its own,
//!   so a crowd reading one event's seat map costs one cache round trip at a time, not one each.
//!   Its answer may be older than the request by at most that one read: meant only for reads that
//!   are eventually consistent anyway (the cached seat map, milliseconds behind the store).
//! - The read runs on a task of its own, so a caller that goes away never leaves it half done for
//!   the next one; its entry goes when it ends, so a key nobody reads holds no memory.
//! - A read that panics answers `None` to everyone who joined it, as a failed read does.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, FutureExt, Shared};

type InFlight<V> = Shared<BoxFuture<'static, Option<V>>>;

/// The reads in flight, by key (clones share them).
pub struct JoinedReads<K, V> {
    inflight: Arc<Mutex<HashMap<K, InFlight<V>>>>,
}

impl<K, V> Clone for JoinedReads<K, V> {
    fn clone(&self) -> Self {
        Self {
            inflight: self.inflight.clone(),
        }
    }
}

impl<K, V> Default for JoinedReads<K, V> {
    fn default() -> Self {
        Self {
            inflight: Arc::default(),
        }
    }
}

impl<K, V> JoinedReads<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The answer of the read of `key` in flight, or of `read` started now for it.
    pub async fn read<F>(&self, key: K, read: F) -> Option<V>
    where
        F: Future<Output = Option<V>> + Send + 'static,
    {
        let joined = {
            let mut inflight = self.inflight.lock().expect("joined reads lock");
            match inflight.get(&key) {
                Some(running) => running.clone(),
                None => {
                    let (table, mine) = (self.inflight.clone(), key.clone());
                    let task = tokio::spawn(async move {
                        let _leave = Leave(table, mine);
                        read.await
                    });
                    let shared = async move { task.await.ok().flatten() }.boxed().shared();
                    inflight.insert(key, shared.clone());
                    shared
                }
            }
        };
        joined.await
    }

    /// Keys with a read in flight.
    pub fn in_flight(&self) -> usize {
        self.inflight.lock().expect("joined reads lock").len()
    }
}

/// Removes a read's entry when it ends, also when it panics.
struct Leave<K: Eq + Hash, V>(Arc<Mutex<HashMap<K, InFlight<V>>>>, K);

impl<K: Eq + Hash, V> Drop for Leave<K, V> {
    fn drop(&mut self) {
        if let Ok(mut inflight) = self.0.lock() {
            inflight.remove(&self.1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn given_a_read_in_flight_when_others_ask_for_its_key_then_they_share_it() {
        let reads: JoinedReads<u32, String> = JoinedReads::default();
        let started = Arc::new(AtomicUsize::new(0));
        let asked: Vec<_> = (0..50)
            .map(|n| {
                let (reads, started) = (reads.clone(), started.clone());
                tokio::spawn(async move {
                    let key = n % 2;
                    reads
                        .read(key, async move {
                            started.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Some(format!("map {key}"))
                        })
                        .await
                        .map(|answer| (key, answer))
                })
            })
            .collect();
        for a in asked {
            let (key, answer) = a.await.unwrap().unwrap();
            assert_eq!(answer, format!("map {key}"));
        }
        // Two keys, so at least two reads; far fewer than one per request.
        let reads_run = started.load(Ordering::SeqCst);
        assert!(
            (2..10).contains(&reads_run),
            "{reads_run} reads for 50 requests"
        );
        assert_eq!(reads.in_flight(), 0, "finished reads leave nothing behind");
    }

    #[tokio::test]
    async fn given_a_read_that_ended_when_asked_again_then_a_new_read_runs() {
        let reads: JoinedReads<u32, u32> = JoinedReads::default();
        assert_eq!(reads.read(1, async { Some(1) }).await, Some(1));
        assert_eq!(reads.read(1, async { Some(2) }).await, Some(2));
    }

    #[tokio::test]
    async fn given_a_read_that_panics_when_joined_then_everyone_gets_none_and_the_key_is_free() {
        let reads: JoinedReads<u32, u32> = JoinedReads::default();
        let failing = reads.read(7, async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            panic!("the read failed")
        });
        let joining = async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            reads.read(7, async { Some(1) }).await
        };
        assert_eq!(tokio::join!(failing, joining), (None, None));
        // The panicked read left nothing behind: a new read runs.
        assert_eq!(reads.read(7, async { Some(3) }).await, Some(3));
    }

    #[tokio::test]
    async fn given_a_caller_that_goes_away_when_another_joins_then_the_read_still_completes() {
        let reads: JoinedReads<u32, u32> = JoinedReads::default();
        let gone = tokio::time::timeout(
            Duration::from_millis(5),
            reads.read(3, async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                Some(30)
            }),
        )
        .await;
        assert!(gone.is_err(), "the first caller gave up");
        assert_eq!(reads.read(3, async { Some(99) }).await, Some(30));
    }
}
