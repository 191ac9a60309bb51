//! Seat blocks that no writer holds in memory, read from the store once per crowd.
//!
//! Policy:
//! - A hold of named seats is answered from its blocks' writers' memory. A block no writer holds
//!   (the first requests of a sale, or a block idle for [`crate::writers::BLOCK_IDLE`]) is read by
//!   one request and handed to its writer; requests for it that arrive meanwhile wait for that read
//!   (a turn per block, striped over [`STRIPES`] locks) and then find it in memory. Measured
//!   before: 500 buyers crowding 5 new rows every 2 s (`SHAPE=crowd` of k6/durable_holds.js) read
//!   each block from the store ~210 times.
//! - What was read this way is answered as memory is: a refusal from it is checked against the
//!   stored version first ([`crate::version_probe`]), like any answer from memory.
//! - Best-available picks read a whole hall at once, with a turn per event ([`crate::picker`]).
//! - A turn remembers a read that failed: the requests that were already waiting behind it get
//!   that failure at once (503 with `Retry-After`) instead of each trying again in turn, which on
//!   a stalled database would answer the n-th of them after n statement timeouts. A request that
//!   comes after the failure reads again.

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use domain::SeatBlock;
use sqlx::PgPool;

use crate::error::CommandError;
use crate::persistence::load_with_version;
use crate::writers::Writers;

/// Locks the blocks' turns are striped over (two blocks may share one; they then read in turn).
pub const STRIPES: usize = 256;

/// One turn to read from the store, with when the last read failed and why, if it did.
#[derive(Default)]
pub(crate) struct ReadTurn(tokio::sync::Mutex<Option<(Instant, String)>>);

impl ReadTurn {
    /// Runs `read` in this turn, unless the read of the request before this one failed while this
    /// one waited: then its failure. `read` itself checks whether the request before did the work.
    pub(crate) async fn take<T>(
        &self,
        read: impl Future<Output = Result<T, CommandError>>,
    ) -> Result<T, CommandError> {
        let waiting_since = Instant::now();
        let mut failed = self.0.lock().await;
        if let Some((at, cause)) = &*failed {
            if *at > waiting_since {
                return Err(CommandError::Unavailable(cause.clone()));
            }
        }
        let outcome = read.await;
        *failed = match &outcome {
            Err(CommandError::Unavailable(cause)) => Some((Instant::now(), cause.clone())),
            _ => None,
        };
        outcome
    }
}

/// The turns, and how many blocks were read because no writer held them.
pub(crate) struct ColdReads {
    turns: Box<[ReadTurn]>,
    reads: AtomicU64,
}

impl Default for ColdReads {
    fn default() -> Self {
        Self {
            turns: (0..STRIPES).map(|_| ReadTurn::default()).collect(),
            reads: AtomicU64::new(0),
        }
    }
}

impl ColdReads {
    /// Makes sure block `id`'s writer holds its state: reads it from the store unless another
    /// request did while this one waited for the block's turn.
    pub(crate) async fn hold_in_memory(
        &self,
        writers: &Writers<SeatBlock>,
        pool: &PgPool,
        id: &str,
    ) -> Result<(), CommandError> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut hasher);
        let turn = &self.turns[hasher.finish() as usize % STRIPES];
        turn.take(async {
            if writers.committed(id).is_some() {
                return Ok(()); // read by the request before this one
            }
            let (state, version) = load_with_version::<SeatBlock>(pool, id).await?;
            writers.seed(id, Arc::new(state), version);
            self.count(1, "hold");
            Ok(())
        })
        .await
    }

    /// Counts `blocks` read from the store because no writer held them, for holds of named
    /// seats (`by` = "hold") or best-available picks ("pick").
    pub(crate) fn count(&self, blocks: u64, by: &'static str) {
        self.reads.fetch_add(blocks, Ordering::Relaxed);
        metrics::counter!("seatgrid_seat_block_cold_reads_total", "by" => by).increment(blocks);
    }

    /// Blocks read so far.
    pub(crate) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
}
