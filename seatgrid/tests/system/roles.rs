//! Roles as processes (`SEATGRID_ROLES`): an API process and two projector processes over one
//! PostgreSQL and Redis. One projector leads; when it is killed (`kill -9`, a real OS process)
//! under load, the standby takes over within seconds, and the read models end equal to the event
//! store, with no event applied twice.

use std::time::{Duration, Instant};

use booking::Role;
use serde_json::{json, Value};

use crate::helpers::eventually;
use crate::payments_mock::free_port;
use crate::processes::{bearer, create_event, server_env, Server};

fn with_roles(mut env: Vec<(String, String)>, roles: &str) -> Vec<(String, String)> {
    env.push(("SEATGRID_ROLES".into(), roles.into()));
    env
}

/// `seatgrid_leader{role="projector"}` of the process at `url`.
async fn leads_projector(url: &str) -> Option<bool> {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with("seatgrid_leader{role=\"projector\"}"))
        .map(|l| l.ends_with(" 1"))
}

/// Waits until the process at `url` leads the projector.
async fn until_leading(url: &str, within: Duration) {
    eventually(within, || async {
        (leads_projector(url).await == Some(true)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_projector_takes_over_from_a_killed_leader_and_the_read_models_match_the_store() {
    let (db_url, pool) = migrations::testing::fresh_database(3).await;
    let prefix = format!("sgtest:{}:", uuid::Uuid::new_v4().simple());
    let api_port = free_port();
    let api = Server::start(
        with_roles(server_env(&db_url, api_port, &prefix), "api,sweeper"),
        None,
    );
    api.ready().await;
    let leader = Server::start(
        with_roles(server_env(&db_url, free_port(), &prefix), "projector"),
        None,
    );
    leader.ready().await;
    until_leading(&leader.url, Duration::from_secs(20)).await;
    let standby = Server::start(
        with_roles(server_env(&db_url, free_port(), &prefix), "projector"),
        None,
    );
    standby.ready().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        leads_projector(&standby.url).await,
        Some(false),
        "one leader"
    );
    // The API process does not project, and answers only what an API answers.
    assert_eq!(leads_projector(&api.url).await, None);
    let on_projector = reqwest::get(format!("{}/api/events", leader.url))
        .await
        .unwrap();
    assert_eq!(
        on_projector.status(),
        404,
        "a projector process serves no API"
    );

    // Load: 50 buyers holding and releasing seats of their own through the API process, from
    // before the leader dies until after the standby leads.
    let event = create_event(&api.url, "Failover night", 20, 20, 1000).await;
    let client = reqwest::Client::new();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let buyers: Vec<_> = (0..50u32)
        .map(|b| {
            let (client, stop) = (client.clone(), stop.clone());
            let api = api.url.clone();
            let event = event.clone();
            tokio::spawn(async move {
                let token = bearer(&format!("buyer{b}"), Role::Buyer);
                let mut holds = 0;
                for round in 0.. {
                    let seat = b * 8 + round % 8;
                    let held: Value = client
                        .post(format!("{api}/api/events/{event}/holds"))
                        .header("authorization", &token)
                        .json(&json!({"seats": [seat]}))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    let hold = held["hold_id"].as_str().unwrap_or_else(|| panic!("{held}"));
                    holds += 1;
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break; // the last hold stays
                    }
                    let released = client
                        .delete(format!("{api}/api/holds/{hold}"))
                        .header("authorization", &token)
                        .send()
                        .await
                        .unwrap();
                    assert!(released.status().is_success(), "{}", released.status());
                }
                holds
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let behind_at_kill: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    drop(leader); // SIGKILL: a real process dies mid-stream
    let killed_at = Instant::now();
    until_leading(&standby.url, Duration::from_secs(15)).await;
    let took_over = killed_at.elapsed();
    println!("the standby led {took_over:?} after the leader was killed ({behind_at_kill} events logged by then)");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut holds = 0;
    for b in buyers {
        holds += b.await.unwrap();
    }
    assert!(holds > 100, "{holds} holds: the load ran");

    // The read models catch up and equal the event store: the projected seat map is the one
    // computed from the events, and every event was applied once.
    let seats = |consistency: &'static str| {
        let client = client.clone();
        let url = format!("{}/api/events/{event}/seats{consistency}", api.url);
        async move {
            let map: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            map["seats"].as_str().unwrap_or_default().to_owned()
        }
    };
    let strong = seats("?consistency=strong").await;
    assert_eq!(strong.matches('H').count(), 50, "each buyer's last hold");
    eventually(Duration::from_secs(20), || {
        let projected = seats("");
        let strong = &strong;
        async move { (projected.await == *strong).then_some(()) }
    })
    .await;
    let (applied, logged): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT events_applied FROM projection_checkpoints WHERE name = $1),
                (SELECT count(*) FROM events)",
    )
    .bind(projections::READ_MODELS)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(applied, logged, "every event applied exactly once");
}
