//! Commands interrupted by a client that went away or a server that stopped leave nothing half done.

use std::time::Duration;

use booking::Role;
use domain::stored::aggregate_type::SEAT_BLOCK;
use domain::{EventId, SeatBlockId};
use serde_json::json;

use crate::helpers::{bearer, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_across_two_blocks_completes_after_its_client_disconnects() {
    let app = spawn_app().await;
    // Two rows of two seats: seats 0-1 are block 0, seats 2-3 block 1.
    let event = app.create_grid_event(2, 2, json!({})).await;
    let block_1 = SeatBlockId {
        event_id: EventId(event.parse().unwrap()),
        index: 1,
    }
    .aggregate_id();

    // Another writer is about to append to block 1 and has not committed yet: the hold's append to
    // block 1 waits for it, after block 0 is already held.
    let mut other = migrations::transaction::begin(&app.pool).await.unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         VALUES ($1, $2, 1, 'Blocker', '1', '{}', '{}')",
    )
    .bind(SEAT_BLOCK)
    .bind(&block_1)
    .execute(&mut *other)
    .await
    .unwrap();

    // The client gives up while the hold waits on block 1, and hangs up.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let sent = impatient
        .post(app.url(&format!("/api/events/{event}/holds")))
        .header("authorization", bearer("dora", Role::Buyer))
        .json(&json!({"seats": [1, 2]}))
        .send()
        .await;
    assert!(sent.is_err(), "the client timed out");
    tokio::time::sleep(Duration::from_millis(500)).await;
    other.rollback().await.unwrap();

    // The command went on without its client: the hold is whole (both seats), not half placed.
    let mut seats = String::new();
    for _ in 0..100 {
        seats = app.seat_map(&event).await;
        if seats == "AHHA" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seats, "AHHA", "both seats held, none stuck alone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_of_a_booking_that_never_finished_stop_counting_against_the_customer() {
    use booking::{EventStore, RetryPolicy};
    use domain::{CustomerAllowance, CustomerAllowanceCommand, CustomerId, HoldId, SeatId};

    let app = spawn_app().await;
    let event = app
        .create_grid_event(1, 10, json!({"max_seats_per_customer": 2}))
        .await;
    let event_id = EventId(event.parse().unwrap());
    let zoe = CustomerId::parse("zoe").unwrap();
    // Zoe's booking committed her allowance for two seats a while ago, and its server stopped
    // before booking the seats: the allowance says committed, no seat block says booked.
    let store = EventStore::new(app.pool.clone(), RetryPolicy::default());
    let allowance = CustomerAllowance::aggregate_id(event_id, &zoe);
    let hold_id = HoldId::new_random();
    let now = chrono::Utc::now();
    let meta = std::collections::HashMap::new();
    store
        .execute::<CustomerAllowance>(&allowance, &meta, || CustomerAllowanceCommand::Reserve {
            event_id,
            customer_id: zoe.clone(),
            hold_id,
            seats: vec![SeatId(0), SeatId(1)],
            expires_at: now - chrono::Duration::minutes(10),
            limit: 2,
            now: now - chrono::Duration::minutes(20),
        })
        .await
        .unwrap();
    store
        .execute::<CustomerAllowance>(&allowance, &meta, || CustomerAllowanceCommand::Commit {
            hold_id,
            decided_at: now - chrono::Duration::minutes(15),
        })
        .await
        .unwrap();

    // Her next hold finds the abandoned booking, gives its seats back and goes through.
    let held = app.hold(&event, "zoe", json!([5, 6])).await;
    assert_eq!(held.status(), reqwest::StatusCode::CREATED);
    let returned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = $2",
    )
    .bind(&allowance)
    .bind(domain::stored::event_type::ALLOWANCE_RETURNED)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(returned, 1);
}

/// A command whose caller leaves at any point, even while its transaction's BEGIN is on the way,
/// leaves no transaction open on the pool's connection (see `migrations::transaction`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_cut_short_at_any_point_leaves_no_transaction_open() {
    use booking::{
        BookingCommands, BookingService, Caller, EventStore, RequestContext, RetryPolicy,
    };
    use migrations::testing::{fresh_database, inside_an_open_transaction, leave_early};

    let (_url, pool) = fresh_database(1).await;
    let service = BookingService::new(
        EventStore::new(pool.clone(), RetryPolicy::default()),
        Default::default(),
    );
    let organizer = Caller::new(domain::CustomerId::parse("org").unwrap(), Role::Organizer);
    let ctx = RequestContext {
        correlation_id: "cut-short".into(),
        id_seed: None,
    };
    // Callers that leave at once or after up to 10 ms (the timer's granularity is 1 ms).
    let mut cut_short = 0;
    for wait in 0..100u64 {
        let draft = domain::NewEvent {
            organizer: None,
            name: format!("Cut short {wait}"),
            venue: None,
            starts_at: None,
            currency: None,
            layout: domain::LayoutSpec::grid(1, 4, 1000).unwrap(),
            hold_seconds: None,
            max_seats_per_customer: None,
        };
        let creating = service.create_event(draft, &organizer, &ctx);
        let patience = Duration::from_micros(wait * 100);
        cut_short += usize::from(leave_early(wait, patience, creating).await);
        assert!(
            !inside_an_open_transaction(&pool).await,
            "caller {wait} left a transaction open"
        );
    }
    assert!(cut_short >= 50, "enough callers left early ({cut_short})");
}
