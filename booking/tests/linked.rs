//! Linked appends against a real PostgreSQL, with the test counter: a riding command's events
//! commit in the transaction of the command that carries them, or not at all.

use std::sync::Arc;

use booking::linked::Rider;
use booking::store::StoreError;
use booking::writers::{ColdStart, RideAnswer, Writers};
use sqlx::PgPool;

mod common;

use common::{meta, stored_events, writers, writers_starting, Counter, CounterCommand, Full};

/// The transaction ids that wrote the counter's events, in order.
async fn writing_transactions(pool: &PgPool, id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT xmin::text FROM events
          WHERE aggregate_type = 'TestCounter' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// A counter at 5 that another process stored as `id`, and this process's writers: riders that
/// assume counters new (so its version 1 is taken), carriers that read.
async fn assuming_new_over_stored(
    pool: &PgPool,
    id: &str,
) -> (Arc<Writers<Counter>>, Arc<Writers<Counter>>) {
    writers(pool)
        .execute(id, CounterCommand::Add(5), meta())
        .await
        .unwrap();
    (writers_starting(pool, ColdStart::AssumeNew), writers(pool))
}

/// Adds 1 to `id` as a riding command: its rider and the answer that follows it.
async fn ride(riders: &Writers<Counter>, id: &str) -> (Rider, RideAnswer<Counter>) {
    let riding = riders
        .execute_riding(id, CounterCommand::Add(1), meta())
        .unwrap();
    riding.decided().await.expect("it wrote an event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_riding_command_commits_in_the_transaction_of_the_command_that_carries_it() {
    let (_, pool) = migrations::testing::fresh_database(5).await;
    let (riders, carriers) = (writers(&pool), writers(&pool));
    // Given a command decided to ride: it hands its events over instead of committing them.
    let (rider, answer) = ride(&riders, "rider").await;
    assert!(stored_events(&pool, "rider").await.is_empty());
    // When another writer's command carries it and writes...
    carriers
        .execute_carrying("carrier", CounterCommand::Add(2), meta(), rider)
        .await
        .unwrap();
    // ...then both are answered, and both events were written by one transaction.
    answer.get().await.unwrap();
    let (rode, carried) = (
        writing_transactions(&pool, "rider").await,
        writing_transactions(&pool, "carrier").await,
    );
    assert_eq!(rode.len(), 1);
    assert_eq!(rode, carried);
    assert_eq!(riders.committed("rider").unwrap().version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_that_writes_nothing_cancels_its_rider() {
    let (_, pool) = migrations::testing::fresh_database(5).await;
    let (riders, carriers) = (writers(&pool), writers(&pool));
    // Given a full carrier and a rider at 3.
    carriers
        .execute("carrier", CounterCommand::Add(10), meta())
        .await
        .unwrap();
    riders
        .execute("rider", CounterCommand::Add(3), meta())
        .await
        .unwrap();
    let (rider, answer) = ride(&riders, "rider").await;
    // When the carrier refuses its command...
    let carried = carriers
        .execute_carrying("carrier", CounterCommand::Add(1), meta(), rider)
        .await;
    assert!(matches!(carried, Err(StoreError::Rejected(Full))));
    // ...then the rider is told it was not written, and it was not: its state is as before.
    assert!(matches!(
        answer.get().await,
        Err(StoreError::Unavailable(_))
    ));
    assert_eq!(stored_events(&pool, "rider").await.len(), 1);
    let committed = riders.committed("rider").unwrap();
    assert_eq!((committed.version, committed.state.value), (1, 3));
    // And its writer goes on from there.
    riders
        .execute("rider", CounterCommand::Add(1), meta())
        .await
        .unwrap();
    assert_eq!(stored_events(&pool, "rider").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rider_that_lost_its_version_race_is_written_with_nothing_and_reads_again() {
    let (_, pool) = migrations::testing::fresh_database(5).await;
    // Given a rider at 5, stored by another process; this process assumes it new.
    let (riders, carriers) = assuming_new_over_stored(&pool, "rider").await;
    let (rider, answer) = ride(&riders, "rider").await;
    // When the carrier writes, with the rider's version taken...
    let carried = carriers
        .execute_carrying("carrier", CounterCommand::Add(2), meta(), rider)
        .await;
    // ...then neither is written, both are told, and the rider's writer read the stored state.
    assert!(matches!(carried, Err(StoreError::Contention(_))));
    assert!(matches!(answer.get().await, Err(StoreError::Contention(_))));
    assert!(stored_events(&pool, "carrier").await.is_empty());
    assert_eq!(stored_events(&pool, "rider").await.len(), 1);
    let committed = riders.committed("rider").unwrap();
    assert_eq!((committed.version, committed.state.value), (1, 5));
    // And tried again, both are written, together.
    let (rider, answer) = ride(&riders, "rider").await;
    carriers
        .execute_carrying("carrier", CounterCommand::Add(2), meta(), rider)
        .await
        .unwrap();
    answer.get().await.unwrap();
    let rode = writing_transactions(&pool, "rider").await;
    assert_eq!(rode.len(), 2);
    assert_eq!(rode[1..], writing_transactions(&pool, "carrier").await[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_that_panics_never_tells_its_rider_it_was_written() {
    let (_, pool) = migrations::testing::fresh_database(5).await;
    let (riders, carriers) = (writers(&pool), writers(&pool));
    let (rider, answer) = ride(&riders, "rider").await;
    // When the carrying command's decision panics...
    let carried = carriers
        .execute_carrying("carrier", CounterCommand::Panic, meta(), rider)
        .await;
    // ...then both get an error, nothing is written, and the rider's writer reads again.
    assert!(matches!(carried, Err(StoreError::Unavailable(_))));
    assert!(matches!(
        answer.get().await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(stored_events(&pool, "rider").await.is_empty());
    assert!(riders.committed("rider").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_riding_command_answers_without_a_rider() {
    let (_, pool) = migrations::testing::fresh_database(5).await;
    let riders = writers(&pool);
    riders
        .execute("rider", CounterCommand::Add(10), meta())
        .await
        .unwrap();
    // A refusal writes nothing: no rider, the refusal itself.
    let riding = riders
        .execute_riding("rider", CounterCommand::Add(1), meta())
        .unwrap();
    assert!(matches!(
        riding.decided().await,
        Err(Err(StoreError::Rejected(Full)))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rider_that_lost_fails_only_the_command_that_carried_it() {
    let (_, pool) = migrations::testing::fresh_database(5).await;
    // Given twenty riders, one of them on a counter another process wrote and this one assumes
    // new (its version is taken).
    let (riders, carriers) = assuming_new_over_stored(&pool, "rider-7").await;
    let mut rode = Vec::new();
    for i in 0..20 {
        rode.push(ride(&riders, &format!("rider-{i}")).await);
    }
    // When one carrier carries them all at once (batched as they come)...
    let mut carried = Vec::new();
    for (rider, answer) in rode {
        let carriers = carriers.clone();
        carried.push(tokio::spawn(async move {
            let result = carriers
                .execute_carrying("carrier", CounterCommand::Take(0), meta(), rider)
                .await;
            (result, answer.get().await)
        }));
    }
    // ...then only the command whose rider lost fails, and every other pair is written.
    for (i, c) in carried.into_iter().enumerate() {
        let (result, answer) = c.await.unwrap();
        match i {
            7 => assert!(matches!(
                (result, answer),
                (
                    Err(StoreError::Contention(_)),
                    Err(StoreError::Contention(_))
                )
            )),
            _ => {
                result.unwrap();
                answer.unwrap();
                assert_eq!(stored_events(&pool, &format!("rider-{i}")).await.len(), 1);
            }
        }
    }
    assert_eq!(stored_events(&pool, "carrier").await.len(), 19);
    assert_eq!(stored_events(&pool, "rider-7").await.len(), 1);
}
