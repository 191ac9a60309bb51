//! Redis is a cache: flushing it during traffic changes no answer, and it refills by itself.

use std::time::Duration;

use redis::AsyncCommands;
use serde_json::json;

use crate::helpers::{eventually, redis_url, spawn_system};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushall_during_traffic_keeps_answers_correct_and_the_cache_refills() {
    let app = spawn_system().await;
    let event = app.create_grid_event(4, 25, 600).await;
    app.wait_for_read_side(&event).await;
    let client = redis::Client::open(redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();

    let writers: Vec<_> = (0..40u32)
        .map(|i| {
            let app_address = app.address.clone();
            let event = event.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut holds = 0;
                for seat in [i, i + 40] {
                    // A real client: retries a 503 (contention on the row) after a pause.
                    for attempt in 0.. {
                        let r = client
                            .post(format!("{app_address}/api/events/{event}/holds"))
                            .header(
                                "authorization",
                                command_api::testing::bearer(
                                    &format!("c{i}"),
                                    booking::Role::Buyer,
                                ),
                            )
                            .json(&json!({"seats": [seat]}))
                            .send()
                            .await
                            .unwrap();
                        let status = r.status().as_u16();
                        if status == 503 && attempt < 50 {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                        assert_eq!(status, 201, "{}", r.text().await.unwrap());
                        break;
                    }
                    holds += 1;
                }
                holds
            })
        })
        .collect();
    // Readers keep asking while Redis is flushed under them. ASYNC: the keyspace is empty at once
    // and memory is freed behind it (the shared Redis may hold other runs' keys, and freeing them
    // in line outlasted the client's response timeout once).
    for _ in 0..5 {
        redis::cmd("FLUSHALL")
            .arg("ASYNC")
            .query_async::<()>(&mut redis)
            .await
            .unwrap();
        let seats = app.seat_map(&event).await.expect("seat map answers");
        assert_eq!(seats.len(), 100);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let mut total = 0;
    for w in writers {
        total += w.await.unwrap();
    }
    assert_eq!(total, 80);
    let truth = app.wait_for_read_side(&event).await;
    assert_eq!(truth.matches('H').count(), 80);

    // Flushed once more with no traffic: the next read refills the cache from Postgres.
    redis::cmd("FLUSHALL")
        .arg("ASYNC")
        .query_async::<()>(&mut redis)
        .await
        .unwrap();
    assert_eq!(app.seat_map(&event).await.as_deref(), Some(truth.as_str()));
    let key = format!("{}{{{event}}}:seats", app.prefix);
    let cached: Option<String> = redis.get(&key).await.unwrap();
    assert_eq!(cached.as_deref(), Some(truth.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_that_missed_an_update_is_not_trusted() {
    let app = spawn_system().await;
    let event = app.create_grid_event(1, 10, 600).await;
    app.wait_for_read_side(&event).await;
    let client = redis::Client::open(redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}{{{event}}}:seats", app.prefix);
    // Simulate a lost write-through: the cached map and its version are frozen at "all free"
    // while the projector moves on (it applies only onto the exact previous version).
    let stale_version: i64 = redis.get(format!("{key}:v")).await.unwrap();
    app.hold(&event, "jo", &[9]).await;
    eventually(Duration::from_secs(10), || async {
        let head: Option<i64> = redis.clone().get(format!("{key}:head")).await.unwrap();
        (head > Some(stale_version)).then_some(())
    })
    .await;
    let _: () = redis.set(&key, "AAAAAAAAAA").await.unwrap();
    let _: () = redis.set(format!("{key}:v"), stale_version).await.unwrap();
    assert_eq!(app.seat_map(&event).await.as_deref(), Some("AAAAAAAAAH"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_seat_maps_come_from_the_read_side_unless_strong_is_asked() {
    let app = spawn_system().await;
    let event = app.create_grid_event(1, 10, 600).await;
    app.hold(&event, "max", &[4]).await;
    let truth = app.wait_for_read_side(&event).await;
    let get = |query: &'static str| {
        let url = format!("{}/api/events/{event}/seats{query}", app.address);
        let client = app.client.clone();
        async move {
            client
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let eventual = get("").await;
    assert_eq!(eventual["consistency"], "eventual");
    assert_eq!(eventual["seats"], truth.as_str());
    assert_eq!(eventual["held"], 1);
    let strong = get("?consistency=strong").await;
    assert_eq!(strong["consistency"], "strong");
    assert_eq!(strong["seats"], truth.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_write_that_was_lost_never_leaves_readers_on_the_old_state() {
    use crate::own_redis::OwnRedis;
    use std::time::Duration;

    let redis = OwnRedis::start();
    let (_, pool) = migrations::testing::fresh_database(6).await;
    let app = crate::helpers::spawn_on(pool.clone(), redis.url(), None).await;
    let event = app.create_grid_event(1, 5, 600).await;
    assert_eq!(app.wait_for_read_side(&event).await, "AAAAA");
    let client = redis::Client::open(redis.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let cmd = |args: &[&str]| {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        c
    };

    // Redis stops taking writes; the hold is projected to PostgreSQL, its cache write waits in
    // Redis' queue, and the connection carrying it is dropped before Redis runs it: lost, as in a
    // network cut or a failover. The cached map stays at the old version, with nothing saying so.
    let _: () = cmd(&["CLIENT", "PAUSE", "5000", "WRITE"])
        .query_async(&mut admin)
        .await
        .unwrap();
    app.hold(&event, "jo", &[1]).await;
    crate::helpers::eventually(Duration::from_secs(5), || {
        let pool = pool.clone();
        let event = event.clone();
        async move {
            let seats: String =
                sqlx::query_scalar("SELECT seats FROM rm_seat_map_view WHERE event_id = $1::uuid")
                    .bind(&event)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            (seats == "AHAAA").then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let _: redis::RedisResult<i64> = cmd(&["CLIENT", "KILL", "TYPE", "normal"])
        .query_async(&mut admin)
        .await;
    let _: () = cmd(&["CLIENT", "UNPAUSE"])
        .query_async(&mut admin)
        .await
        .unwrap();

    // Within moments readers see the committed state, and never the old one again.
    crate::helpers::eventually(Duration::from_secs(3), || {
        let app = app.clone();
        let event = event.clone();
        async move { (app.seat_map(&event).await.as_deref() == Some("AHAAA")).then_some(()) }
    })
    .await;
    for _ in 0..20 {
        assert_eq!(app.seat_map(&event).await.as_deref(), Some("AHAAA"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
