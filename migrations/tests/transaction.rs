//! A transaction whose caller leaves while its `BEGIN` is on the way is not left open on the
//! pooled connection (see `migrations::transaction`).

use std::time::Duration;

use migrations::testing::{fresh_database, inside_an_open_transaction, leave_early};
use migrations::transaction::begin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_leaving_during_begin_leaves_no_transaction_open() {
    let (_url, pool) = fresh_database(1).await;
    let mut cut_short = 0;
    // Callers that leave at once (every other one: after the first poll, the BEGIN not even
    // sent) or after up to 2 ms (the timer's granularity is 1 ms): some leave before the
    // connection is theirs, some while the BEGIN is on its way (`Pool::begin` left a transaction
    // open within the first few turns), some with the transaction begun.
    for wait in 0..200u64 {
        let timeout = Duration::from_micros(wait * 10);
        let left = leave_early(wait, timeout, begin(&pool)).await;
        cut_short += usize::from(left);
        assert!(
            !inside_an_open_transaction(&pool).await,
            "caller {wait} (leaving at once or after {timeout:?}) left a transaction open"
        );
    }
    assert!(cut_short >= 100, "enough callers left early ({cut_short})");
    // A transaction that is used and committed still works, and commits.
    let mut tx = begin(&pool).await.unwrap();
    sqlx::query("CREATE TABLE kept (id int)")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    sqlx::query("SELECT count(*) FROM kept")
        .execute(&pool)
        .await
        .unwrap();
}
