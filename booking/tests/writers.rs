//! The in-memory writers and the group commit against a real PostgreSQL, with a small test
//! aggregate (a bounded counter): a panicking command, many aggregates committed together, two
//! "processes" (two sets of writers) on one aggregate, and a refusal that memory alone would get
//! wrong.

use std::sync::Arc;

use booking::group_commit::GroupCommit;
use booking::store::StoreError;
use booking::writers::{ColdStart, Writers};
use booking::RetryPolicy;

mod common;

use common::{meta, stored_events, writers, Counter, CounterCommand, Full};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_panics_answers_its_batch_with_errors_and_starts_again() {
    let (_, pool) = migrations::testing::fresh_database(5).await;
    let w = writers(&pool);
    // Given commands queued together with one that panics.
    let mut asked = Vec::new();
    for i in 0..40 {
        let w = w.clone();
        let command = match i {
            20 => CounterCommand::Panic,
            i if i % 2 == 0 => CounterCommand::Add(1),
            _ => CounterCommand::Take(1),
        };
        asked.push(tokio::spawn(async move {
            w.execute("c1", command, meta()).await
        }));
    }
    let mut answers = Vec::new();
    for a in asked {
        answers.push(a.await.unwrap());
    }
    // Then the panicking command (and any decided with it) got an error, never a success...
    assert!(matches!(answers[20], Err(StoreError::Unavailable(_))));
    // ...and every success is stored, and nothing else is.
    let successes = answers.iter().filter(|a| a.is_ok()).count();
    let stored = stored_events(&pool, "c1").await;
    assert_eq!(stored.len(), successes);
    assert!(stored
        .iter()
        .enumerate()
        .all(|(i, (seq, _))| *seq == i as i64 + 1));
    // And the writer goes on from the store.
    w.execute("c1", CounterCommand::Add(1), meta())
        .await
        .unwrap();
    assert_eq!(stored_events(&pool, "c1").await.len(), successes + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_aggregates_are_appended_together_each_with_its_own_version() {
    let (_, pool) = migrations::testing::fresh_database(5).await;
    let w = writers(&pool);
    let mut asked = Vec::new();
    for i in 0..300 {
        let w = w.clone();
        asked.push(tokio::spawn(async move {
            let id = format!("c{}", i % 100);
            w.execute(&id, CounterCommand::Add(1), meta()).await
        }));
    }
    for a in asked {
        a.await.unwrap().unwrap();
    }
    for i in 0..100 {
        let events = stored_events(&pool, &format!("c{i}")).await;
        assert_eq!(events.len(), 3, "c{i}");
        assert_eq!(w.committed(&format!("c{i}")).unwrap().version, 3);
    }
    // Each event carries the metadata of the command that made it.
    let (metadata,): (serde_json::Value,) =
        sqlx::query_as("SELECT metadata FROM events WHERE aggregate_type = 'TestCounter' LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(metadata["correlation_id"], "test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_aggregate_lose_nothing_and_refuse_nothing_wrongly() {
    let (_, pool) = migrations::testing::fresh_database(8).await;
    let (a, b) = (writers(&pool), writers(&pool));
    // Given both processes adding to one counter at once: versions decide, a loser reloads.
    let mut asked = Vec::new();
    for i in 0..10 {
        let w = if i % 2 == 0 { a.clone() } else { b.clone() };
        asked.push(tokio::spawn(async move {
            w.execute("shared", CounterCommand::Add(1), meta()).await
        }));
    }
    for x in asked {
        x.await.unwrap().unwrap();
    }
    let events = stored_events(&pool, "shared").await;
    assert_eq!(events.len(), 10);
    // When A knows the counter full and B takes 5 away...
    assert!(matches!(
        a.execute("shared", CounterCommand::Add(1), meta()).await,
        Err(StoreError::Rejected(Full))
    ));
    b.execute("shared", CounterCommand::Take(5), meta())
        .await
        .unwrap();
    // ...then A does not refuse from what it remembers: it sees B's change and adds.
    a.execute("shared", CounterCommand::Add(3), meta())
        .await
        .unwrap();
    assert_eq!(a.committed("shared").unwrap().state.value, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_refused_at_once_as_busy() {
    let (_, pool) = migrations::testing::fresh_database(5).await;
    let w = writers(&pool);
    let queued = booking::writers::QUEUE + booking::writers::MAX_JOBS + 200;
    let mut asked = Vec::new();
    for _ in 0..queued {
        let w = w.clone();
        asked.push(tokio::spawn(async move {
            w.execute("hot", CounterCommand::Take(0), meta()).await
        }));
    }
    let mut busy = 0;
    for x in asked {
        match x.await.unwrap() {
            Ok(()) => {}
            Err(StoreError::Busy) => busy += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(busy > 0, "some were refused as busy");
    // Nothing refused was written; everything accepted was.
    assert_eq!(
        stored_events(&pool, "hot").await.len(),
        queued - busy,
        "one event per accepted command"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_assumes_new_reads_the_aggregate_when_it_is_not_new() {
    let (_, pool) = migrations::testing::fresh_database(5).await;
    // Given a counter at 10, written by a writer that has since gone.
    let first = writers(&pool);
    first
        .execute("old", CounterCommand::Add(10), meta())
        .await
        .unwrap();
    let commit = Arc::new(GroupCommit::new(pool.clone()));
    let assuming = Writers::<Counter>::new(
        pool.clone(),
        commit,
        RetryPolicy::default(),
        (std::time::Duration::from_secs(5), 100),
        ColdStart::AssumeNew,
    );
    // When a writer that assumes it new adds 1, then it is refused as the stored counter says...
    assert!(matches!(
        assuming
            .execute("old", CounterCommand::Add(1), meta())
            .await,
        Err(StoreError::Rejected(Full))
    ));
    // ...nothing was added, and a new counter is written without being read first.
    assert_eq!(stored_events(&pool, "old").await.len(), 1);
    assuming
        .execute("new", CounterCommand::Add(2), meta())
        .await
        .unwrap();
    assert_eq!(assuming.committed("new").unwrap().version, 1);
    // And a later version's rows never stay behind a lost race: only the winner's are stored.
    let events = stored_events(&pool, "old").await;
    assert_eq!(events[0].1, serde_json::json!({"Added": 10}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_batch_of_several_events_leaves_none_of_them_behind() {
    let (_, pool) = migrations::testing::fresh_database(5).await;
    let (a, b) = (writers(&pool), writers(&pool));
    a.execute("c", CounterCommand::Add(1), meta())
        .await
        .unwrap();
    // B writes version 2 behind A's back; A, still at version 1, decides a command of two
    // events: versions 2 and 3, of which 3 is free and 2 is not.
    b.execute("c", CounterCommand::Add(1), meta())
        .await
        .unwrap();
    a.execute("c", CounterCommand::AddOneTwice, meta())
        .await
        .unwrap();
    // Every version once, each the event of a command that was answered, in order.
    let events = stored_events(&pool, "c").await;
    let sequences: Vec<i64> = events.iter().map(|(s, _)| *s).collect();
    assert_eq!(sequences, [1, 2, 3, 4]);
    assert_eq!(a.committed("c").unwrap().state.value, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_version_lookups_shares_queries_and_each_sees_what_came_before_it() {
    let (_, pool) = migrations::testing::fresh_database(5).await;
    let w = writers(&pool);
    w.execute("p", CounterCommand::Add(1), meta())
        .await
        .unwrap();
    let probes = Arc::new(booking::version_probe::VersionProbes::new(
        pool.clone(),
        "TestCounter",
    ));
    let asked: Vec<_> = (0..200)
        .map(|_| {
            let probes = probes.clone();
            tokio::spawn(async move { probes.stored_version("p").await })
        })
        .collect();
    for a in asked {
        assert_eq!(a.await.unwrap(), Ok(1));
    }
    assert!(
        probes.lookups() < 50,
        "{} lookups for 200 requests",
        probes.lookups()
    );
    // A write answered before a lookup was asked is always seen by it.
    for expected in 2..6 {
        w.execute("p", CounterCommand::Add(1), meta())
            .await
            .unwrap();
        assert_eq!(probes.stored_version("p").await, Ok(expected));
    }
    // Unknown aggregates are at version 0.
    assert_eq!(probes.stored_version("nobody").await, Ok(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_spread_over_many_aggregates_shares_one_query_per_round() {
    let (_, pool) = migrations::testing::fresh_database(5).await;
    let w = writers(&pool);
    // Aggregate "a3" is at version 3, and so on; "a0" has no events.
    for i in 1..10usize {
        for _ in 0..i {
            w.execute(&format!("a{i}"), CounterCommand::Add(1), meta())
                .await
                .unwrap();
        }
    }
    let probes = Arc::new(booking::version_probe::VersionProbes::new(
        pool.clone(),
        "TestCounter",
    ));
    let asked: Vec<_> = (0..300usize)
        .map(|n| {
            let probes = probes.clone();
            tokio::spawn(
                async move { (n % 10, probes.stored_version(&format!("a{}", n % 10)).await) },
            )
        })
        .collect();
    for a in asked {
        let (i, version) = a.await.unwrap();
        assert_eq!(version, Ok(i), "aggregate a{i}");
    }
    // Ten aggregates, yet fewer rounds than a lookup per aggregate per request would need.
    assert!(
        probes.lookups() < 30,
        "{} lookups for 300 requests over 10 aggregates",
        probes.lookups()
    );
    // A write answered before a lookup was asked is seen by it, whichever aggregates share it.
    w.execute("a1", CounterCommand::Add(1), meta())
        .await
        .unwrap();
    let (a1, a2) = tokio::join!(probes.stored_version("a1"), probes.stored_version("a2"));
    assert_eq!((a1, a2), (Ok(2), Ok(2)));
}

#[tokio::test]
async fn a_writer_that_stopped_when_idle_hands_its_state_to_the_next_one() {
    let (_, pool) = migrations::testing::fresh_database(4).await;
    let commit = Arc::new(GroupCommit::new(pool.clone()));
    let quick = Writers::<Counter>::new(
        pool.clone(),
        commit,
        RetryPolicy::default(),
        (std::time::Duration::from_millis(100), 100),
        ColdStart::AssumeNew,
    );
    quick
        .execute("back", CounterCommand::Add(3), meta())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(quick.committed("back").is_none(), "the writer stopped");
    // Behind its back the stored event goes: a writer that assumed the counter new would now
    // write version 1; one that starts from the parked state writes version 2.
    sqlx::query("DELETE FROM events WHERE aggregate_id = 'back'")
        .execute(&pool)
        .await
        .unwrap();
    quick
        .execute("back", CounterCommand::Add(1), meta())
        .await
        .unwrap();
    let stored = stored_events(&pool, "back").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, 2, "started from the parked state (version 1)");
    assert_eq!(quick.committed("back").map(|c| c.state.value), Some(4));
}

#[tokio::test]
async fn a_second_store_of_the_process_shares_the_seat_blocks_writers() {
    let (_, pool) = migrations::testing::fresh_database(4).await;
    let main = booking::EventStore::new(pool.clone(), RetryPolicy::default());
    let order_process = main.sharing_writers(pool.clone());
    let block = Arc::new(domain::SeatBlock::default());
    main.block_writers().seed("event/0", block, 7);
    let seen = order_process.block_writers().committed("event/0");
    assert_eq!(
        seen.map(|c| c.version),
        Some(7),
        "one writer, whichever store"
    );
    let separate = booking::EventStore::new(pool, RetryPolicy::default());
    assert!(separate.block_writers().committed("event/0").is_none());
}
