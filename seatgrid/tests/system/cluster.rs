//! Three API processes behind Debian's HAProxy (`deploy/haproxy/haproxy.cfg.template`), with a
//! fourth process running the singleton roles: 300 clients race for 100 seats, a third of them
//! through HAProxy and the rest straight at each API process, and no seat is held twice; HAProxy
//! sends one event's requests to one process, and carries a GraphQL subscription's WebSocket; when
//! that process is killed (`kill -9`), HAProxy sends the event to another and holds go on, still
//! never twice.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use booking::Role;
use serde_json::{json, Value};

use crate::helpers::subscribe_to;
use crate::payments_mock::free_port;
use crate::processes::{bearer, create_event, server_env, strong_seats, Server};

/// An HAProxy process in front of `backends`; stopped when dropped.
pub struct Haproxy {
    child: Child,
    pub url: String,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }
}

impl Haproxy {
    pub async fn start(backends: &[&str]) -> Self {
        let port = free_port();
        let template = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../deploy/haproxy/haproxy.cfg.template"),
        )
        .unwrap();
        let servers: Vec<String> = backends
            .iter()
            .enumerate()
            .map(|(i, url)| format!("    server api{i} {}", url.trim_start_matches("http://")))
            .collect();
        let config = template
            .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
            .replace("@SERVERS@", &servers.join("\n"));
        let dir = std::env::temp_dir().join(format!("seatgrid-haproxy-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, config).unwrap();
        let haproxy = std::env::var("HAPROXY").unwrap_or_else(|_| "haproxy".into());
        let log = dir.join("haproxy.log");
        let child = Command::new(&haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {haproxy} ({e}): install Debian's haproxy (scripts/test does)")
            });
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = reqwest::get(format!("{url}/health/ready")).await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "HAProxy did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            child,
            url,
            _dir: tempdir::Dir(dir),
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Successful holds (201) one process answered, from its `/metrics`.
async fn holds_served(url: &str) -> u64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("seatgrid_http_requests_total{")
                && l.contains("route=\"/api/events/:event_id/holds\"")
                && l.contains("status=\"201\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// One hold attempt of `seat` by `buyer` at `base`: the seat ids held (empty if refused).
async fn try_hold(
    client: &reqwest::Client,
    base: &str,
    event: &str,
    buyer: &str,
    seat: u32,
) -> (u16, Vec<u64>) {
    let response = client
        .post(format!("{base}/api/events/{event}/holds"))
        .header("authorization", bearer(buyer, Role::Buyer))
        .json(&json!({"seats": [seat]}))
        .send()
        .await;
    let Ok(response) = response else {
        return (0, vec![]);
    };
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status != 201 {
        return (status, vec![]);
    }
    let seats = body["seats"]
        .as_array()
        .map(|s| s.iter().filter_map(|x| x["seat_id"].as_u64()).collect())
        .unwrap_or_default();
    (status, seats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_api_processes_behind_haproxy_never_hold_a_seat_twice_and_survive_losing_one() {
    let (db_url, _pool) = migrations::testing::fresh_database(3).await;
    let prefix = format!("sgtest:{}:", uuid::Uuid::new_v4().simple());
    let start = |roles: &str| {
        let mut env = server_env(&db_url, free_port(), &prefix);
        env.push(("SEATGRID_ROLES".into(), roles.into()));
        Server::start(env, None)
    };
    let apis = [start("api"), start("api"), start("api")];
    let worker = start("projector,sweeper");
    for server in apis.iter().chain([&worker]) {
        server.ready().await;
    }
    let urls: Vec<&str> = apis.iter().map(|s| s.url.as_str()).collect();
    let haproxy = Haproxy::start(&urls).await;
    let event = create_event(&haproxy.url, "Cluster night", 20, 10, 1000).await;
    // A subscriber through HAProxy (a WebSocket upgrade) sees the seats the race takes.
    let mut updates = subscribe_to(
        &format!("{}/graphql/ws", haproxy.url.replace("http://", "ws://")),
        None,
        "subscription($e: UUID!) { seatUpdates(eventId: $e) { seatId status } }",
        json!({"e": event}),
    )
    .await;

    // 300 clients, three attempts each at random seats among the first 100: a third through
    // HAProxy, the others straight at one API process each.
    let client = reqwest::Client::new();
    let racers: Vec<_> = (0..300usize)
        .map(|c| {
            let base = if c % 3 == 0 {
                haproxy.url.clone()
            } else {
                urls[c % urls.len()].to_owned()
            };
            let (client, event) = (client.clone(), event.clone());
            tokio::spawn(async move {
                let mut won = Vec::new();
                for attempt in 0..3u32 {
                    let seat = (c as u32 * 37 + attempt * 53) % 100;
                    // A 503 (contention or an overloaded pool, with Retry-After) holds nothing;
                    // a client tries again, as this one does.
                    for _ in 0..20 {
                        let (status, seats) =
                            try_hold(&client, &base, &event, &format!("racer{c}"), seat).await;
                        assert!(matches!(status, 201 | 409 | 503), "status {status}");
                        won.extend(seats);
                        if status != 503 {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
                won
            })
        })
        .collect();
    let mut held = Vec::new();
    for r in racers {
        held.extend(r.await.unwrap());
    }
    let distinct: HashSet<u64> = held.iter().copied().collect();
    assert_eq!(distinct.len(), held.len(), "a seat held twice");
    assert!(held.len() >= 90, "only {} of 100 seats held", held.len());
    let pushed = updates.next_data().await;
    assert_eq!(pushed["seatUpdates"]["status"], "HELD", "{pushed}");
    let seat = pushed["seatUpdates"]["seatId"].as_u64().unwrap();
    assert!(held.contains(&seat), "{pushed}");

    // HAProxy sends the event's requests to one process: ten more holds through it all land on
    // the same one.
    let mut before = Vec::new();
    for url in &urls {
        before.push(holds_served(url).await);
    }
    for seat in 100..110u32 {
        let (status, seats) = try_hold(&client, &haproxy.url, &event, "probe", seat).await;
        assert_eq!(status, 201);
        held.extend(seats);
    }
    let mut grew = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        grew.push(holds_served(url).await - before[i]);
    }
    println!("holds through HAProxy by process: {grew:?}");
    let owner = grew
        .iter()
        .position(|n| *n == 10)
        .expect("one process took all ten");
    assert_eq!(grew.iter().sum::<u64>(), 10);

    // Kill it: HAProxy finds out and sends the event elsewhere; holds go on.
    let mut apis = Vec::from(apis);
    drop(apis.remove(owner)); // SIGKILL
    let killed_at = Instant::now();
    let mut after_failover = Vec::new();
    let mut first_ok = None;
    for seat in 110..200u32 {
        let (status, seats) =
            try_hold(&client, &haproxy.url, &event, &format!("late{seat}"), seat).await;
        match status {
            201 => {
                first_ok.get_or_insert(killed_at.elapsed());
                after_failover.extend(seats);
            }
            // While HAProxy finds out, a request may fail; never after a success.
            502 | 503 | 0 if first_ok.is_none() => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("hold of seat {seat} after the failover: {other}"),
        }
    }
    let first_ok = first_ok.expect("holds went on after the kill");
    println!(
        "first hold after the kill: {first_ok:?}; then {} holds",
        after_failover.len()
    );
    assert!(first_ok < Duration::from_secs(10));
    assert!(after_failover.len() >= 70);
    held.extend(after_failover);
    let distinct: HashSet<u64> = held.iter().copied().collect();
    assert_eq!(distinct.len(), held.len(), "a seat held twice");

    // The event store agrees: exactly the answered seats are held.
    let seats = strong_seats(&haproxy.url, &event).await;
    let stored: HashSet<u64> = seats
        .char_indices()
        .filter(|(_, c)| *c == 'H')
        .map(|(i, _)| i as u64)
        .collect();
    assert_eq!(stored, distinct);
    drop(worker);
}
