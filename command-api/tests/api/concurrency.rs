//! 200 concurrent clients race for 50 seats through the HTTP API, with overlapping picks that
//! often span seat blocks; afterwards the event store is replayed to prove no seat was ever held
//! by two live holds at once or booked twice, and that every 201 a client saw is in the store.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use booking::Role;

use crate::helpers::{
    bearer, crowd_at_once, own_core, replay_and_check_no_double_sale, seat_ids, spawn_app,
};

const CLIENTS: usize = 200;

#[derive(Debug)]
enum Outcome {
    Held {
        hold_id: String,
        seats: Vec<u64>,
        booked: bool,
        released: bool,
    },
    Refused(StatusCode),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_racing_for_fifty_seats_never_share_one() {
    let app = spawn_app().await;
    // 5 rows of 10: five seat blocks.
    let event = app.create_grid_event(5, 10, json!({})).await;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let client = app.client.clone();
            let base = app.address.clone();
            let event = event.clone();
            let start = start.clone();
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(i as u64);
                // One to three seats near each other, sometimes across a row boundary.
                let first: u64 = rng.random_range(0..48);
                let count = rng.random_range(1..=3);
                let seats: Vec<u64> = (first..first + count).collect();
                let customer = bearer(&format!("fan-{i}"), Role::Buyer);
                let organizer = bearer(crate::helpers::ORGANIZER, Role::Organizer);
                start.wait().await;
                let response = client
                    .post(format!("{base}/api/events/{event}/holds"))
                    .header("authorization", &customer)
                    .json(&json!({"seats": seats}))
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                if status != StatusCode::CREATED {
                    let body: Value = response.json().await.unwrap();
                    assert_eq!(body["status"], status.as_u16(), "problem+json: {body}");
                    return Outcome::Refused(status);
                }
                let view: Value = response.json().await.unwrap();
                let hold_id = view["hold_id"].as_str().unwrap().to_owned();
                let (mut booked, mut released) = (false, false);
                match i % 4 {
                    0 | 1 => {
                        let r = client
                            .request(Method::POST, format!("{base}/api/holds/{hold_id}/book"))
                            .header("authorization", &organizer)
                            .send()
                            .await
                            .unwrap();
                        assert!(
                            matches!(r.status(), StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE),
                            "{}",
                            r.status()
                        );
                        booked = r.status() == StatusCode::OK;
                    }
                    2 => {
                        let r = client
                            .request(Method::DELETE, format!("{base}/api/holds/{hold_id}"))
                            .header("authorization", &customer)
                            .send()
                            .await
                            .unwrap();
                        assert!(
                            matches!(
                                r.status(),
                                StatusCode::NO_CONTENT | StatusCode::SERVICE_UNAVAILABLE
                            ),
                            "{}",
                            r.status()
                        );
                        released = r.status() == StatusCode::NO_CONTENT;
                    }
                    _ => {}
                }
                Outcome::Held {
                    hold_id,
                    seats: seat_ids(&view),
                    booked,
                    released,
                }
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }

    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for o in &outcomes {
        let code = match o {
            Outcome::Held { .. } => 201,
            Outcome::Refused(s) => s.as_u16(),
        };
        *statuses.entry(code).or_default() += 1;
    }
    println!("hold outcomes: {statuses:?}");
    assert!(
        statuses.keys().all(|s| [201, 409, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.get(&201).copied().unwrap_or(0) >= 10,
        "{statuses:?}"
    );
    assert!(
        statuses.get(&409).copied().unwrap_or(0) > 0,
        "picks overlap, so some must lose"
    );

    let replay = replay_and_check_no_double_sale(&app.pool).await;
    let map = app.seat_map(&event).await;
    for outcome in &outcomes {
        if let Outcome::Held {
            hold_id,
            seats,
            booked,
            released,
        } = outcome
        {
            let stored = replay
                .held
                .get(hold_id)
                .unwrap_or_else(|| panic!("201 hold {hold_id} is not in the store"));
            let mut stored: Vec<u64> = stored.iter().map(|s| u64::from(*s)).collect();
            stored.sort_unstable();
            assert_eq!(&stored, seats);
            for seat in seats {
                let shown = map.as_bytes()[*seat as usize] as char;
                // A released seat may have been taken again by a later client.
                if !*released {
                    let expected = if *booked { 'B' } else { 'H' };
                    assert_eq!(shown, expected, "seat {seat} of hold {hold_id}");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_on_a_cold_seat_block_reads_it_from_the_store_once() {
    use booking::SeatChoice;
    use domain::{EventId, SeatRef};
    // Given a row of 10 seats (one seat block) that no writer of this process holds yet,
    let app = spawn_app().await;
    let event = app.create_grid_event(1, 10, json!({})).await;
    let event_id = EventId(event.parse().unwrap());
    let core = own_core(&app);
    // when a crowd asks for its seats at once (four buyers for each seat),
    let seat = |i: usize| SeatChoice::Named(vec![SeatRef::Id(i as u32 % 10)]);
    let mut held: Vec<u32> = crowd_at_once(&core, event_id, 40, seat)
        .await
        .into_iter()
        .flatten()
        .flat_map(|view| view.seats.into_iter().map(|s| s.seat_id))
        .collect();
    // then each seat went to one buyer, and the block was read from the store once: the crowd
    // waited for the first read instead of each reading it.
    held.sort();
    assert_eq!(held, (0..10).collect::<Vec<u32>>());
    assert_eq!(core.cold_block_reads(), 1);
    replay_and_check_no_double_sale(&app.pool).await;
}
