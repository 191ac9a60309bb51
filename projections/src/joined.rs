//! Reads joined while in flight: concurrent requests for one key share one read.
//!
//! Policy:
//! - A request for a key whose read is in flight waits for that read instead of starting its own,
//!   so a crowd reading one event's seat map costs one cache round trip at a time, not one each.
//!   Its answer may be older than the request by at most that one read: meant only for reads that
//!   are eventually consistent anyway (the cached seat map, milliseconds behind the store).
//! - With [`JoinedReads::fresh_for`], a read's answer also serves the requests that arrive until
//!   that long after the read started (then a new read runs): a crowd costs at most one read per
//!   key per period, and an answer is at most that period older than the request (plus the read).
//! - The read runs on a task of its own, so a caller that goes away never leaves it half done for
//!   the next one; its entry goes when it ends (a kept answer when its period ends), so a key
//!   nobody reads holds no memory.
//! - A read that panics or answers `None` is not kept: everyone who joined it gets `None`, and the
//!   next request reads again.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use tokio::time::Instant;

type InFlight<V> = Shared<BoxFuture<'static, Option<V>>>;

/// A read of one key: in flight, or done and kept until `keep_until` (its start + `fresh_for`).
struct Entry<V> {
    read: u64,
    keep_until: Instant,
    answer: InFlight<V>,
}

type Table<K, V> = Arc<Mutex<HashMap<K, Entry<V>>>>;

/// The reads in flight (and, with [`JoinedReads::fresh_for`], kept), by key (clones share them).
pub struct JoinedReads<K, V> {
    entries: Table<K, V>,
    fresh_for: Duration,
    reads: Arc<AtomicU64>,
}

impl<K, V> Clone for JoinedReads<K, V> {
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
            fresh_for: self.fresh_for,
            reads: self.reads.clone(),
        }
    }
}

impl<K, V> Default for JoinedReads<K, V> {
    fn default() -> Self {
        Self::fresh_for(Duration::ZERO)
    }
}

impl<K, V> JoinedReads<K, V> {
    /// Reads whose answers also serve the requests arriving within `fresh_for` of their start.
    pub fn fresh_for(fresh_for: Duration) -> Self {
        Self {
            entries: Arc::default(),
            fresh_for,
            reads: Arc::default(),
        }
    }
}

impl<K, V> JoinedReads<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The answer of the read of `key` in flight (or kept), or of `read` started now for it.
    pub async fn read<F>(&self, key: K, read: F) -> Option<V>
    where
        F: Future<Output = Option<V>> + Send + 'static,
    {
        let now = Instant::now();
        let joined = {
            let mut entries = self.entries.lock().expect("joined reads lock");
            match entries.get(&key) {
                Some(e) if e.answer.peek().is_none() || now < e.keep_until => e.answer.clone(),
                _ => {
                    let number = self.reads.fetch_add(1, Ordering::Relaxed);
                    let leave = Leave(self.entries.clone(), key.clone(), number);
                    let keep_until = now + self.fresh_for;
                    let task = tokio::spawn(async move {
                        let answer = read.await;
                        if answer.is_some() && Instant::now() < keep_until {
                            tokio::spawn(async move {
                                tokio::time::sleep_until(keep_until).await;
                                drop(leave);
                            });
                        }
                        answer
                    });
                    let answer = async move { task.await.ok().flatten() }.boxed().shared();
                    let entry = Entry {
                        read: number,
                        keep_until,
                        answer: answer.clone(),
                    };
                    entries.insert(key, entry);
                    answer
                }
            }
        };
        joined.await
    }

    /// Keys with a read in flight or kept.
    pub fn keys(&self) -> usize {
        self.entries.lock().expect("joined reads lock").len()
    }

    /// Reads started so far.
    pub fn reads_started(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
}

/// Removes a read's entry (unless a newer read replaced it) when the read ends, also when it
/// panics, or when its kept answer's period ends.
struct Leave<K: Eq + Hash, V>(Table<K, V>, K, u64);

impl<K: Eq + Hash, V> Drop for Leave<K, V> {
    fn drop(&mut self) {
        if let Ok(mut entries) = self.0.lock() {
            if entries.get(&self.1).is_some_and(|e| e.read == self.2) {
                entries.remove(&self.1);
            }
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
        assert_eq!(reads.keys(), 0, "finished reads leave nothing behind");
    }

    #[tokio::test]
    async fn given_a_read_that_ended_when_asked_again_then_a_new_read_runs() {
        let reads: JoinedReads<u32, u32> = JoinedReads::default();
        assert_eq!(reads.read(1, async { Some(1) }).await, Some(1));
        assert_eq!(reads.read(1, async { Some(2) }).await, Some(2));
    }

    #[tokio::test]
    async fn given_a_freshness_period_when_asked_again_within_it_then_the_kept_answer_serves() {
        let reads: JoinedReads<u32, u32> = JoinedReads::fresh_for(Duration::from_millis(200));
        assert_eq!(reads.read(1, async { Some(1) }).await, Some(1));
        // Within the period: the kept answer, no new read.
        assert_eq!(reads.read(1, async { Some(2) }).await, Some(1));
        assert_eq!(reads.reads_started(), 1);
        assert_eq!(reads.keys(), 1, "the answer is kept for its period");
        // After it: a new read, and the old answer's entry is gone.
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(reads.read(1, async { Some(3) }).await, Some(3));
        assert_eq!(reads.reads_started(), 2);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(reads.keys(), 0, "a key nobody reads holds no memory");
    }

    #[tokio::test]
    async fn given_a_freshness_period_when_a_read_answers_none_then_it_is_not_kept() {
        let reads: JoinedReads<u32, u32> = JoinedReads::fresh_for(Duration::from_secs(60));
        assert_eq!(reads.read(1, async { None }).await, None);
        assert_eq!(reads.read(1, async { Some(2) }).await, Some(2));
        assert_eq!(reads.reads_started(), 2);
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
