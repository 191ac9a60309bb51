//! Stop the server abruptly in the middle of a load, start it again on the same database:
//! everything that was acknowledged is still there, and the store never sold a seat twice.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use booking::Role;

use crate::helpers::{bearer, replay_and_check_no_double_sale, seat_ids, spawn_app, start_on};

/// A hold id and its seats, as a client saw them in a 201.
type Acknowledged = (String, Vec<u64>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_load_loses_nothing_acknowledged() {
    let mut app = spawn_app().await;
    let event = app
        .create_grid_event(20, 10, json!({"max_seats_per_customer": 100}))
        .await;
    let acknowledged: Arc<Mutex<Vec<Acknowledged>>> = Arc::default();
    let clients: Vec<_> = (0..40u64)
        .map(|c| {
            let client = app.client.clone();
            let base = app.address.clone();
            let event = event.clone();
            let acknowledged = acknowledged.clone();
            tokio::spawn(async move {
                for round in 0..50u64 {
                    let seat = (c * 5 + round) % 200;
                    let sent = client
                        .post(format!("{base}/api/events/{event}/holds"))
                        .header("authorization", bearer(&format!("c{c}"), Role::Buyer))
                        .json(&json!({"seats": [seat]}))
                        .send()
                        .await;
                    let Ok(response) = sent else { return };
                    if response.status() == StatusCode::CREATED {
                        let Ok(view) = response.json::<Value>().await else {
                            return;
                        };
                        let id = view["hold_id"].as_str().unwrap().to_owned();
                        acknowledged.lock().unwrap().push((id, seat_ids(&view)));
                    }
                }
            })
        })
        .collect();

    // Let the load run, then kill the server while requests are in flight.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while acknowledged.lock().unwrap().len() < 30 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.crash();
    for c in clients {
        c.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 30,
        "the load got going ({} holds)",
        acknowledged.len()
    );

    let restarted = start_on(app.db_url.clone(), app.pool.clone()).await;
    for (hold_id, seats) in &acknowledged {
        let response = restarted.get(&format!("/api/holds/{hold_id}")).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "acknowledged hold {hold_id} lost"
        );
        let view: Value = response.json().await.unwrap();
        assert_eq!(view["status"], "held");
        assert_eq!(&seat_ids(&view), seats);
    }
    let replay = replay_and_check_no_double_sale(&restarted.pool).await;
    for (hold_id, _) in &acknowledged {
        assert!(replay.held.contains_key(hold_id));
    }
    // And the restarted server takes new work.
    let free = restarted
        .seat_map(&event)
        .await
        .find('A')
        .expect("a free seat");
    restarted.hold_ok(&event, "after", json!([free])).await;
}
