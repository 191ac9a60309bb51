//! Time limits against stalled dependencies, with real processes: a Redis server of the test's own
//! that is frozen (SIGSTOP) mid-run, and a PostgreSQL table locked so every statement waits. The
//! service must keep answering, quickly and with clear statuses, never hang.

use std::time::{Duration, Instant};

use serde_json::json;

use sqlx::Connection;

use crate::helpers::{spawn_on, TestSystem};
use crate::own_redis::OwnRedis;

async fn timed<F: std::future::Future>(f: F) -> (F::Output, Duration) {
    let started = Instant::now();
    let out = f.await;
    (out, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_costs_speed_not_answers() {
    let redis = OwnRedis::start();
    let (_, pool) = migrations::testing::fresh_database(6).await;
    let app = spawn_on(pool, redis.url(), None).await;
    let event = app.create_grid_event(1, 10, 600).await;
    app.wait_for_read_side(&event).await;

    redis.signal("-STOP");
    let (held, took) = timed(app.hold(&event, "una", &[1])).await;
    assert_eq!(held["data"]["holdSeats"]["status"], "HELD", "{held}");
    assert!(
        took < Duration::from_secs(5),
        "a hold took {took:?} with Redis frozen"
    );
    let (map, took) = timed(app.data(
        "query($e: UUID!) { seatMap(eventId: $e) { seats } }",
        json!({"e": event}),
    ))
    .await;
    assert!(map["seatMap"]["seats"].is_string(), "{map}");
    assert!(
        took < Duration::from_secs(5),
        "a read took {took:?} with Redis frozen"
    );

    // Thawed, the read side catches up with the hold made meanwhile.
    redis.signal("-CONT");
    assert_eq!(&app.wait_for_read_side(&event).await[..2], "AH");
}

/// A pool with tight limits over a fresh database (2 connections, 300 ms to get one, statements
/// cut at 1 s), as `seatgrid::pool` builds the server's.
async fn tight_pool() -> (String, sqlx::PgPool) {
    let (url, _) = migrations::testing::fresh_database(1).await;
    let mut settings = seatgrid::config::Settings::from_vars(Vec::new())
        .unwrap()
        .app;
    settings.db_max_connections = 2;
    settings.db_acquire_timeout_ms = 300;
    settings.db_statement_timeout_ms = 1_000;
    (url.clone(), seatgrid::pool(&url, &settings).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_database_answers_503_with_retry_after_within_seconds() {
    let (url, pool) = tight_pool().await;
    let app: TestSystem = spawn_on(pool, crate::helpers::redis_url(), None).await;
    let event = app.create_grid_event(1, 20, 600).await;
    app.wait_for_read_side(&event).await;

    // Another client takes the event store's table and sits on it.
    let mut locker = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();

    let holds = (0..6).map(|i| {
        let app = app.clone();
        let event = event.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let response = app
                .client
                .post(format!("{}/api/events/{event}/holds", app.address))
                .header(
                    "authorization",
                    command_api::testing::bearer(&format!("s{i}"), booking::Role::Buyer),
                )
                .json(&json!({"seats": [i]}))
                .send()
                .await
                .unwrap();
            (
                response.status(),
                response.headers().get("retry-after").cloned(),
                started.elapsed(),
            )
        })
    });
    for hold in futures::future::join_all(holds).await {
        let (status, retry_after, took) = hold.unwrap();
        assert_eq!(status, 503, "a stalled store is unavailable, not an error");
        assert!(retry_after.is_some(), "503 says when to retry");
        assert!(took < Duration::from_secs(4), "answered in {took:?}");
    }
    // Health says so too, quickly.
    let (ready, took) = timed(
        app.client
            .get(format!("{}/health/ready", app.address))
            .send(),
    )
    .await;
    assert!(
        took < Duration::from_secs(4),
        "readiness answered in {took:?}"
    );
    let _ = ready;

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let after = app.hold(&event, "back", &[10]).await;
    assert_eq!(after["data"]["holdSeats"]["status"], "HELD", "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_booked_while_live_updates_stall_is_pushed_as_booked_never_expired() {
    let redis = OwnRedis::start();
    let (_, pool) = migrations::testing::fresh_database(6).await;
    let app = spawn_on(pool, redis.url(), None).await;
    let event = app.create_grid_event(1, 10, 2).await; // holds last 2 s
    let hold = app.hold(&event, "vic", &[2]).await["data"]["holdSeats"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let vic = app.as_buyer("vic");
    let mut sub = vic
        .subscribe(
            "subscription($h: UUID!) { hold(id: $h) { status } }",
            json!({"h": hold}),
        )
        .await;
    assert_eq!(sub.next_data().await["hold"]["status"], "HELD");
    // Live updates stop (Redis frozen), then vic's seats are booked just in time: the projected BOOKED cannot
    // reach the subscription before the hold's expiry.
    redis.signal("-STOP");
    let booked = app
        .as_organizer()
        .data(
            "mutation($h: UUID!) { bookHold(holdId: $h) { status } }",
            json!({"h": hold}),
        )
        .await;
    assert_eq!(booked["bookHold"]["status"], "BOOKED");
    assert_eq!(sub.next_data().await["hold"]["status"], "BOOKED");
    redis.signal("-CONT");
}
