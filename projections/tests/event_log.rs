//! The global order never skips an event committed late, on a real Postgres.

use migrations::testing::fresh_database;
use projections::{EventLog, GlobalPosition};
use sqlx::{PgPool, Postgres, Transaction};

async fn append(tx: &mut Transaction<'_, Postgres>, id: &str) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Test', $1, 1, 'Tested', '1', '{}', '{}')",
    )
    .bind(id)
    .execute(&mut **tx)
    .await
    .unwrap();
}

async fn commit_one(pool: &PgPool, id: &str) {
    let mut tx = migrations::transaction::begin(pool).await.unwrap();
    append(&mut tx, id).await;
    tx.commit().await.unwrap();
}

/// Reads after `cursor` until `n` events are readable. Open transactions of other tests (in any
/// database of the server) may hold the visibility line back for a moment; that is the price of
/// never skipping, and waiting it out is what a projector does too.
async fn read_n(
    log: &EventLog,
    cursor: GlobalPosition,
    n: usize,
) -> Vec<projections::RecordedEvent> {
    for _ in 0..500 {
        let batch = log.read_after(cursor, 100).await.unwrap();
        if batch.len() >= n {
            return batch;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{n} events never became readable");
}

fn ids(events: &[projections::RecordedEvent]) -> Vec<String> {
    events.iter().map(|e| e.aggregate_id.clone()).collect()
}

#[tokio::test]
async fn a_slow_transaction_holds_readers_back_until_it_commits() {
    let (_url, pool) = fresh_database(4).await;
    let log = EventLog::new(pool.clone());
    commit_one(&pool, "first").await;
    let mut cursor = GlobalPosition::START;
    let batch = read_n(&log, cursor, 1).await;
    assert_eq!(ids(&batch), ["first"]);
    cursor = batch.last().unwrap().global;

    // The slow transaction takes a position first, then a quick one commits a later position.
    let mut slow = migrations::transaction::begin(&pool).await.unwrap();
    append(&mut slow, "slow").await;
    commit_one(&pool, "quick").await;

    // Reading now must not pass the slow transaction's event: nothing is returned.
    assert!(log.read_after(cursor, 100).await.unwrap().is_empty());

    slow.commit().await.unwrap();
    let batch = read_n(&log, cursor, 2).await;
    assert_eq!(ids(&batch), ["slow", "quick"]);
    assert!(batch[0].global.position < batch[1].global.position);
}

#[tokio::test]
async fn an_old_transaction_inserting_late_is_still_read_after_a_checkpoint() {
    let (_url, pool) = fresh_database(4).await;
    let log = EventLog::new(pool.clone());

    // The old transaction gets its id early but inserts its event last, so its position is the
    // highest while its transaction id is the lowest.
    let mut old = migrations::transaction::begin(&pool).await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *old)
        .await
        .unwrap();
    commit_one(&pool, "newer").await;
    assert!(log
        .read_after(GlobalPosition::START, 100)
        .await
        .unwrap()
        .is_empty());
    append(&mut old, "older").await;
    old.commit().await.unwrap();

    read_n(&log, GlobalPosition::START, 2).await;
    let mut seen = Vec::new();
    let mut cursor = GlobalPosition::START;
    loop {
        let batch = log.read_after(cursor, 1).await.unwrap();
        let Some(last) = batch.last() else { break };
        assert!(last.global > cursor, "the order only moves forward");
        cursor = last.global;
        seen.extend(ids(&batch));
    }
    assert_eq!(seen, ["older", "newer"]);
}

#[tokio::test]
async fn concurrent_writers_and_a_tailing_reader_see_every_event_exactly_once() {
    let (_url, pool) = fresh_database(12).await;
    let log = EventLog::new(pool.clone());
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    let mut tx = migrations::transaction::begin(&pool).await.unwrap();
                    append(&mut tx, &format!("w{w}-{i}")).await;
                    if i % 7 == 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                    tx.commit().await.unwrap();
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    let mut cursor = GlobalPosition::START;
    while seen.len() < 400 {
        let batch = log.read_after(cursor, 17).await.unwrap();
        if let Some(last) = batch.last() {
            cursor = last.global;
        } else {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        seen.extend(ids(&batch));
    }
    for w in writers {
        w.await.unwrap();
    }
    seen.extend(ids(&log.read_after(cursor, 1000).await.unwrap()));
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(seen.len(), 400, "no event read twice");
    assert_eq!(unique.len(), 400, "every event read");
}

#[tokio::test]
async fn a_batch_ends_with_a_whole_transaction() {
    let (_url, pool) = fresh_database(2).await;
    commit_one(&pool, "before").await;
    let mut tx = migrations::transaction::begin(&pool).await.unwrap();
    for i in 0..5 {
        append(&mut tx, &format!("together-{i}")).await;
    }
    tx.commit().await.unwrap();
    commit_one(&pool, "after").await;
    let log = EventLog::new(pool);
    read_n(&log, GlobalPosition::START, 7).await;
    // A limit of 3 cuts the five-event transaction: the rest of it comes too, nothing after it.
    let batch = log.read_after(GlobalPosition::START, 3).await.unwrap();
    assert_eq!(
        ids(&batch),
        [
            "before",
            "together-0",
            "together-1",
            "together-2",
            "together-3",
            "together-4"
        ]
    );
    let next = log
        .read_after(batch.last().unwrap().global, 3)
        .await
        .unwrap();
    assert_eq!(ids(&next), ["after"]);
}

async fn append_of(tx: &mut Transaction<'_, Postgres>, aggregate_type: &str, id: &str) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ($1, $2, 1, 'Tested', '1', '{\"x\": 1}', '{}')",
    )
    .bind(aggregate_type)
    .bind(id)
    .execute(&mut **tx)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_reader_of_some_types_gets_their_events_and_the_last_one_it_read_past() {
    let (_url, pool) = fresh_database(2).await;
    // Ten events: every third an order; the five-event transaction is cut by the limit below.
    let kinds = |i: usize| {
        if i.is_multiple_of(3) {
            "Order"
        } else {
            "SeatBlock"
        }
    };
    for i in 0..3 {
        commit_one_of(&pool, kinds(i), &format!("e{i}")).await;
    }
    let mut tx = migrations::transaction::begin(&pool).await.unwrap();
    for i in 3..8 {
        append_of(&mut tx, kinds(i), &format!("e{i}")).await;
    }
    tx.commit().await.unwrap();
    for i in 8..10 {
        commit_one_of(&pool, kinds(i), &format!("e{i}")).await;
    }
    let log = EventLog::new(pool);
    read_n(&log, GlobalPosition::START, 10).await;

    let orders: &[&str] = &["Order"];
    let first = log
        .read_after_of(GlobalPosition::START, 4, Some(orders))
        .await
        .unwrap();
    // Read past: e0..e7 (the limit cut the transaction of e3..e7: all of it). Sent: the orders
    // among them, and e7, the last, without its payload.
    assert_eq!(first.scanned, 8);
    assert_eq!(ids(&first.events), ["e0", "e3", "e6", "e7"]);
    assert_eq!(first.events[0].payload.get(), r#"{"x": 1}"#);
    assert_eq!(first.events[3].payload.get(), "null");
    let second = log
        .read_after_of(first.events.last().unwrap().global, 4, Some(orders))
        .await
        .unwrap();
    assert_eq!(second.scanned, 2);
    assert_eq!(ids(&second.events), ["e9"], "e9 is an order and the last");
    let done = log
        .read_after_of(second.events.last().unwrap().global, 4, Some(orders))
        .await
        .unwrap();
    assert_eq!((done.scanned, done.events.len()), (0, 0));

    // Every type: the same ranges, every event.
    let all = log
        .read_after_of(GlobalPosition::START, 4, None)
        .await
        .unwrap();
    assert_eq!(all.scanned, 8);
    assert_eq!(all.events.len(), 8);
}

async fn commit_one_of(pool: &PgPool, aggregate_type: &str, id: &str) {
    let mut tx = migrations::transaction::begin(pool).await.unwrap();
    append_of(&mut tx, aggregate_type, id).await;
    tx.commit().await.unwrap();
}
