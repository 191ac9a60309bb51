//! The expiry sweeper: writes `HoldExpired` for holds whose time ran out and that nobody touched.
//!
//! Policy: correctness never waits for the sweeper. An expired hold stops blocking its seats at
//! `expires_at` by the seat block's own rule; the sweeper only makes the history say so, for
//! readers, and frees old idempotency keys. Several sweepers (one per process) may run at once:
//! they conflict harmlessly on the same blocks and each write is a no-op when done already.

use std::sync::Arc;
use std::time::Duration;

use crate::http::idempotency;
use crate::service::BookingService;

/// How many blocks one pass expires at most; the next pass takes the rest.
const BLOCKS_PER_PASS: i64 = 500;

/// Seat blocks with at least one hold that expired and has no closing event yet.
pub async fn blocks_with_lapsed_holds(pool: &sqlx::PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT held.aggregate_id
           FROM events held
          WHERE held.aggregate_type = 'SeatBlock' AND held.event_type = 'SeatHeld'
            AND (held.payload -> 'SeatHeld' ->> 'expires_at')::timestamptz <= now()
            AND NOT EXISTS (
                SELECT 1 FROM events closed
                 WHERE closed.hold_id = held.hold_id
                   AND closed.aggregate_type = 'SeatBlock'
                   AND closed.aggregate_id = held.aggregate_id
                   AND closed.event_type <> 'SeatHeld')
          LIMIT $1",
    )
    .bind(BLOCKS_PER_PASS)
    .fetch_all(pool)
    .await
}

/// One pass: expire what is due, purge old idempotency keys. Returns the blocks touched.
pub async fn sweep_once(service: &BookingService) -> usize {
    let pool = service.store().pool();
    let blocks = match blocks_with_lapsed_holds(pool).await {
        Ok(blocks) => blocks,
        Err(e) => {
            tracing::warn!(error = %e, "sweeper cannot read the event store");
            return 0;
        }
    };
    if !blocks.is_empty() {
        if let Err(e) = service.expire_holds(&blocks).await {
            tracing::warn!(error = %e, "sweeper could not expire every hold; next pass retries");
        }
    }
    if let Err(e) = idempotency::purge_expired(pool).await {
        tracing::warn!(error = %e, "sweeper could not purge idempotency keys");
    }
    blocks.len()
}

/// Runs passes every `interval` until the task is dropped or aborted.
pub async fn run(service: Arc<BookingService>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let touched = sweep_once(&service).await;
        if touched > 0 {
            tracing::info!(blocks = touched, "recorded expired holds");
        }
    }
}
