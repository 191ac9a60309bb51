//! The write path with real processes: two `seatgrid serve` processes on one PostgreSQL racing
//! for the same seats, and a server killed with SIGKILL while holds are being group-committed.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use booking::Role;
use serde_json::{json, Value};

use crate::payments_mock::free_port;
use crate::processes::{bearer, create_event, server_env, strong_seats, Server};

/// One hold request: its status and, when 201, the hold.
async fn hold(
    client: &reqwest::Client,
    url: &str,
    event: &str,
    buyer: &str,
    seats: Value,
) -> (u16, Value) {
    let sent = client
        .post(format!("{url}/api/events/{event}/holds"))
        .header("authorization", bearer(buyer, Role::Buyer))
        .json(&json!({ "seats": seats }))
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    match sent {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_racing_for_100_seats_with_500_clients_sell_each_seat_once() {
    let (db_url, _pool) = migrations::testing::fresh_database(2).await;
    let prefix = format!("sgrace:{}:", uuid::Uuid::new_v4().simple());
    let servers = [
        Server::start(server_env(&db_url, free_port(), &prefix), None),
        Server::start(server_env(&db_url, free_port(), &prefix), None),
    ];
    for s in &servers {
        s.ready().await;
    }
    let urls: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.url.clone()).collect());
    let event = Arc::new(create_event(&urls[0], "Race", 10, 10, 1000).await);
    let client = reqwest::Client::new();
    // 500 buyers, half through each process, each asking for two adjacent seats of the 100.
    let mut asked = Vec::new();
    for i in 0..500u32 {
        let (client, urls, event) = (client.clone(), urls.clone(), event.clone());
        asked.push(tokio::spawn(async move {
            let first = (i * 37) % 99;
            let url = &urls[(i % 2) as usize];
            let answer = hold(
                &client,
                url,
                &event,
                &format!("buyer{i}"),
                json!([first, first + 1]),
            )
            .await;
            (i % 2, answer)
        }));
    }
    let mut owners: BTreeMap<u64, String> = BTreeMap::new();
    let mut by_status: BTreeMap<(u32, u16), u32> = BTreeMap::new();
    for a in asked {
        let (server, (status, body)) = a.await.unwrap();
        *by_status.entry((server, status)).or_default() += 1;
        assert!(
            [201, 409, 429].contains(&status),
            "every answer a 201, 409 or 429: {status} {body}"
        );
        if status == 201 {
            for seat in body["seats"].as_array().unwrap() {
                let seat = seat["seat_id"].as_u64().unwrap();
                let hold = body["hold_id"].as_str().unwrap().to_owned();
                if let Some(other) = owners.insert(seat, hold.clone()) {
                    panic!("seat {seat} sold twice: holds {other} and {hold}");
                }
            }
        }
    }
    // Both processes sold seats, and the store agrees with what the buyers were told.
    assert!(
        by_status.get(&(0, 201)).is_some_and(|n| *n > 0),
        "{by_status:?}"
    );
    assert!(
        by_status.get(&(1, 201)).is_some_and(|n| *n > 0),
        "{by_status:?}"
    );
    let seats = strong_seats(&urls[1], &event).await;
    for (i, c) in seats.chars().enumerate() {
        assert_eq!(
            c != 'A',
            owners.contains_key(&(i as u64)),
            "seat {i} is {c} but {} sold to a buyer",
            if owners.contains_key(&(i as u64)) {
                "was"
            } else {
                "was not"
            }
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_group_commits_loses_no_acknowledged_hold() {
    let (db_url, _pool) = migrations::testing::fresh_database(2).await;
    let prefix = format!("sgkill:{}:", uuid::Uuid::new_v4().simple());
    let server = Server::start(server_env(&db_url, free_port(), &prefix), None);
    server.ready().await;
    let url = Arc::new(server.url.clone());
    // 40 rows of 50: each of 200 buyers loops over seats of its own (no refusals expected).
    let event = Arc::new(create_event(&url, "Race", 40, 50, 1000).await);
    let client = reqwest::Client::new();
    let mut buyers = Vec::new();
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for b in 0..200u32 {
        let (client, url, event) = (client.clone(), url.clone(), event.clone());
        let answered = answered.clone();
        buyers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for k in 0..10u32 {
                let seat = b * 10 + k;
                let (status, body) =
                    hold(&client, &url, &event, &format!("b{b}-{k}"), json!([seat])).await;
                match status {
                    201 => {
                        answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        acknowledged.push((seat, body["hold_id"].as_str().unwrap().to_owned()))
                    }
                    // The server is gone: what was not answered may or may not have been kept.
                    0 => break,
                    other => panic!("a hold of a free seat answered {other}: {body}"),
                }
            }
            acknowledged
        }));
    }
    // Kill it while the buyers are mid-flight: once a sixth of the holds are answered.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while answered.load(std::sync::atomic::Ordering::Relaxed) < 300 {
        assert!(
            std::time::Instant::now() < deadline,
            "the buyers never got going"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let server = server.kill_and_restart().await;
    let mut acknowledged = Vec::new();
    for b in buyers {
        acknowledged.extend(b.await.unwrap());
    }
    assert!(
        !acknowledged.is_empty(),
        "some holds were answered before the kill"
    );
    assert!(acknowledged.len() < 2000, "the kill came before the end");
    // Every hold that was acknowledged is still there after the restart.
    let seats = strong_seats(&server.url, &event).await;
    let seats: Vec<char> = seats.chars().collect();
    let mut checked = HashSet::new();
    for (seat, hold_id) in &acknowledged {
        assert_eq!(seats[*seat as usize], 'H', "acknowledged seat {seat} lost");
        let hold: Value = client
            .get(format!("{}/api/holds/{hold_id}", server.url))
            .header(
                "authorization",
                bearer(&format!("b{}-{}", seat / 10, seat % 10), Role::Buyer),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(hold["status"], "held", "{hold}");
        checked.insert(*seat);
    }
    // And the restarted server goes on selling (what it holds in memory starts from the store).
    let next = (0..2000u32).find(|s| seats[*s as usize] == 'A').unwrap();
    let (status, _) = hold(&client, &server.url, &event, "late", json!([next])).await;
    assert_eq!(status, 201);
}
