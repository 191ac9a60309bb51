//! The projector runner on a real Postgres: killed mid-stream under concurrent writes it still
//! converges to exactly what a fresh replay builds, redeliveries change nothing, and an event
//! committed out of position order is not skipped.

use std::sync::Arc;
use std::time::Duration;

use booking::EventStore;
use booking::{BookingCommands, BookingService, Caller, RequestContext, RetryPolicy};
use chrono::Utc;
use domain::{
    EventDefinition, EventId, EventPolicy, HoldId, LayoutSpec, NewEvent, SeatRef,
    TicketedEventEvent,
};
use migrations::testing::fresh_database;
use projections::Projection;
use projections::{
    Checkpoints, EventLog, ProjectorRunner, ReadModelProjection, RunnerConfig, READ_MODELS,
};
use sqlx::PgPool;
use uuid::Uuid;

fn service(pool: &PgPool) -> Arc<BookingService> {
    Arc::new(BookingService::new(
        EventStore::new(pool.clone(), RetryPolicy::default()),
        EventPolicy::default(),
    ))
}

fn grid(name: &str, rows: u32, cols: u32) -> NewEvent {
    NewEvent {
        organizer: None,
        name: name.into(),
        venue: None,
        starts_at: None,
        currency: None,
        layout: LayoutSpec::grid(rows, cols, 1000).unwrap(),
        hold_seconds: None,
        max_seats_per_customer: None,
    }
}

fn runner(pool: &PgPool, batch_size: i64) -> ProjectorRunner<ReadModelProjection> {
    ProjectorRunner::new(
        pool.clone(),
        Arc::new(ReadModelProjection::new(None)),
        RunnerConfig {
            batch_size,
            poll_interval: Duration::from_millis(50),
            retry_delay: Duration::from_millis(50),
        },
    )
}

/// Runs a projector until it has applied every committed event.
async fn catch_up(pool: &PgPool) {
    let task = tokio::spawn(runner(pool, 200).run(std::future::pending()));
    let checkpoints = Checkpoints::new(pool.clone());
    for _ in 0..500 {
        if checkpoints.lag(READ_MODELS).await.unwrap().events_behind == 0 {
            task.abort();
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("projector did not catch up");
}

/// Everything the read models say, in a comparable form (versions left out: they only grow).
async fn snapshot(pool: &PgPool) -> (Vec<(Uuid, String)>, Vec<(Uuid, String, Vec<i32>)>) {
    let maps = sqlx::query_as("SELECT event_id, seats FROM rm_seat_map_view ORDER BY event_id")
        .fetch_all(pool)
        .await
        .unwrap();
    let holds = sqlx::query_as("SELECT hold_id, status, seats FROM rm_holds ORDER BY hold_id")
        .fetch_all(pool)
        .await
        .unwrap();
    (maps, holds)
}

fn organizer() -> Caller {
    Caller::new(
        domain::CustomerId::parse("organizer").unwrap(),
        booking::Role::Organizer,
    )
}

fn ctx() -> RequestContext {
    RequestContext {
        correlation_id: "test".into(),
        id_seed: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_mid_stream_converges_to_a_fresh_replay() {
    let (_url, pool) = fresh_database(12).await;
    let service = service(&pool);
    let event = service
        .create_event(grid("Kill test", 10, 20), &organizer(), &ctx())
        .await
        .unwrap();
    let event_id = EventId(event.id);

    let writers: Vec<_> = (0..6u32)
        .map(|w| {
            let service = service.clone();
            tokio::spawn(async move {
                for n in 0..25u32 {
                    let customer = Caller::buyer(&format!("w{w}-{n}")).unwrap();
                    let seat = (w * 37 + n * 11) % 200;
                    let held = service
                        .hold_seats(event_id, &customer, vec![SeatRef::Id(seat)].into(), &ctx())
                        .await;
                    if let Ok(hold) = held {
                        let hold_id = HoldId(hold.hold_id);
                        let _ = if n % 3 == 0 {
                            service.release_hold(hold_id, &customer, &ctx()).await
                        } else {
                            service.book_hold(hold_id, &organizer(), &ctx()).await
                        };
                    }
                }
            })
        })
        .collect();
    // Meanwhile the projector is killed (task aborted) again and again at arbitrary points.
    for round in 0..8u64 {
        let task = tokio::spawn(runner(&pool, 7).run(std::future::pending()));
        tokio::time::sleep(Duration::from_millis(40 + round * 23)).await;
        task.abort();
        let _ = task.await;
    }
    for w in writers {
        w.await.unwrap();
    }
    catch_up(&pool).await;
    let survived = snapshot(&pool).await;
    assert_eq!(
        survived.0[0].1,
        service.seat_map(event_id).await.unwrap().seats,
        "the read model agrees with the command side"
    );
    assert!(survived.1.len() > 50, "enough holds were projected");

    projections::reset(&pool, &ReadModelProjection::new(None))
        .await
        .unwrap();
    assert!(snapshot(&pool).await.1.is_empty());
    catch_up(&pool).await;
    assert_eq!(snapshot(&pool).await, survived);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_batch_changes_nothing() {
    let (_url, pool) = fresh_database(4).await;
    let service = service(&pool);
    let event = service
        .create_event(grid("Twice", 1, 10), &organizer(), &ctx())
        .await
        .unwrap();
    let customer = Caller::buyer("kim").unwrap();
    let hold = service
        .hold_seats(
            EventId(event.id),
            &customer,
            vec![SeatRef::Id(2)].into(),
            &ctx(),
        )
        .await
        .unwrap();
    service
        .book_hold(HoldId(hold.hold_id), &organizer(), &ctx())
        .await
        .unwrap();

    // Transactions of other tests (any database of the server) can briefly hold the visibility
    // line back; wait until all five events are readable.
    let mut events = Vec::new();
    for _ in 0..200 {
        events = EventLog::new(pool.clone()).read_all().await.unwrap();
        if events.len() == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(events.len(), 5);
    let projection = ReadModelProjection::new(None);
    for _ in 0..2 {
        let mut tx = migrations::transaction::begin(&pool).await.unwrap();
        projection.apply(&mut tx, &events).await.unwrap();
        tx.commit().await.unwrap();
    }
    // The earlier half again, after the later half: still nothing moves backwards.
    let mut tx = migrations::transaction::begin(&pool).await.unwrap();
    projection.apply(&mut tx, &events[..2]).await.unwrap();
    tx.commit().await.unwrap();
    let (maps, holds) = snapshot(&pool).await;
    assert_eq!(maps[0].1, "AABAAAAAAA");
    assert_eq!(holds, vec![(hold.hold_id, "booked".to_owned(), vec![2])]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_committed_out_of_position_order_is_not_skipped() {
    let (_url, pool) = fresh_database(6).await;
    let projector = tokio::spawn(runner(&pool, 100).run(std::future::pending()));

    // A slow transaction takes an earlier position and stays open...
    let slow_id = Uuid::new_v4();
    let (definition, _) = EventDefinition::validate(
        EventId(slow_id),
        grid("Slow", 1, 5),
        &EventPolicy::default(),
        Utc::now(),
    )
    .unwrap();
    let payload = serde_json::to_value(TicketedEventEvent::EventCreated(definition)).unwrap();
    let mut slow = migrations::transaction::begin(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ($3, $1, 1, $4, '1', $2, '{}')",
    )
    .bind(slow_id.to_string())
    .bind(payload)
    .bind(domain::stored::aggregate_type::TICKETED_EVENT)
    .bind(domain::stored::event_type::EVENT_CREATED)
    .execute(&mut *slow)
    .await
    .unwrap();

    // ...while a later one commits first.
    let quick = service(&pool)
        .create_event(grid("Quick", 1, 5), &organizer(), &ctx())
        .await
        .unwrap();
    let projected = |id: Uuid| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM rm_events WHERE event_id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
                == 1
        }
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !projected(quick.id).await,
        "nothing behind an open transaction is applied yet"
    );
    slow.commit().await.unwrap();
    for _ in 0..200 {
        if projected(slow_id).await && projected(quick.id).await {
            projector.abort();
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the late-committed event was skipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_listen_on_connections_of_their_own_not_the_shared_pools() {
    let (url, _) = fresh_database(1).await;
    // A pool of two, as a small server's; three runners waiting for events (as the projector,
    // the payment relay and the order process do) must leave both to requests.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(2))
        .connect(&url)
        .await
        .unwrap();
    let runners: Vec<_> = (0..3)
        .map(|_| tokio::spawn(runner(&pool, 200).run(std::future::pending())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let a = pool.acquire().await.expect("a connection for a request");
    let b = pool.acquire().await.expect("a second one");
    drop((a, b));
    for r in runners {
        r.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_seat_map_is_kept_in_chunks_and_reads_back_whole_with_its_counts() {
    let (_url, pool) = fresh_database(6).await;
    let service = service(&pool);
    // 25 rows of 100: chunks of 1,000, 1,000 and 500 seats.
    let event = service
        .create_event(grid("chunks", 25, 100), &organizer(), &ctx())
        .await
        .unwrap();
    let event_id = EventId(event.id);
    let buyer = Caller::buyer("ann").unwrap();
    for seats in [[0, 1], [999, 1000], [2498, 2499]] {
        let refs: Vec<SeatRef> = seats.iter().map(|s| SeatRef::Id(*s)).collect();
        service
            .hold_seats(event_id, &buyer, refs.into(), &ctx())
            .await
            .unwrap();
    }
    catch_up(&pool).await;
    let chunks: Vec<(i32, i32)> = sqlx::query_as(
        "SELECT chunk, length(seats) FROM rm_seat_map_chunks WHERE event_id = $1 ORDER BY chunk",
    )
    .bind(event.id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(chunks, [(0, 1000), (1, 1000), (2, 500)]);
    let (seats, available, held): (String, i32, i32) =
        sqlx::query_as("SELECT seats, available, held FROM rm_seat_map_view WHERE event_id = $1")
            .bind(event.id)
            .fetch_one(&pool)
            .await
            .unwrap();
    let held_at: Vec<usize> = seats.match_indices('H').map(|(i, _)| i).collect();
    assert_eq!(held_at, [0, 1, 999, 1000, 2498, 2499]);
    assert_eq!((available, held), (2494, 6));
    // The map the API serves is the same, whole.
    let strong = service.seat_map(event_id).await.unwrap();
    assert_eq!(strong.seats, seats);
}
