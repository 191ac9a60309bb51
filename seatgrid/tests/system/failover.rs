//! PostgreSQL failover under load: a Patroni pair with etcd (`scripts/lib/patroni.sh`,
//! `deploy/patroni/patroni.yml.template`, synchronous replication on) and a `seatgrid serve`
//! process whose `DATABASE_URL` names both hosts. Buyers hold seats (each retry of a request
//! with its Idempotency-Key, as a client should); the primary's Patroni and PostgreSQL are killed
//! (`kill -9`). Requests in flight and during the election get 503 with `Retry-After`, never another
//! 5xx; holds are answered again once the standby is promoted (within the documented 30 s); every
//! hold answered 201 is in the new primary's event store, and no seat is held twice.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use booking::Role;
use domain::{SeatBlockEvent, StoredEvent};
use serde_json::{json, Value};

use crate::payments_mock::free_port;
use crate::processes::{bearer, create_event, kill9, script_lib, server_env, Server};

/// The documented bound (docs/SCALING.md): Patroni's ttl + loop_wait, the follower's check, slack.
const BACK_WITHIN: Duration = Duration::from_secs(30);

/// etcd and two Patroni members on ports of their own; every process killed when dropped.
struct PatroniPair {
    dir: PathBuf,
    rest_ports: [u16; 2],
    pg_ports: [u16; 2],
}

fn bash(script: &str) -> std::process::Output {
    script_lib("patroni.sh", script)
}

impl PatroniPair {
    /// Starts the pair on free ports. A port found free can be taken by another process before
    /// etcd, Patroni or PostgreSQL binds it (tests run side by side), so a start that failed on
    /// "address already in use" is tried again on new ports, once; any other failure fails the test
    /// with the end of every log.
    fn start() -> Self {
        match Self::try_start() {
            Ok(pair) => pair,
            Err(first) if first.to_lowercase().contains("already in use") => {
                eprintln!("the Patroni pair lost a port to another process; new ports:\n{first}");
                Self::try_start().unwrap_or_else(|second| panic!("{second}"))
            }
            Err(first) => panic!("{first}"),
        }
    }

    fn try_start() -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("seatgrid-patroni-{}", uuid::Uuid::new_v4()));
        let (etcd, etcd_peer, pg_ports, rest_ports) = (
            free_port(),
            free_port(),
            [free_port(), free_port()],
            [free_port(), free_port()],
        );
        let pair = Self {
            dir,
            rest_ports,
            pg_ports,
        };
        let out = bash(&format!(
            "command -v patroni >/dev/null || {{ echo 'install Debian patroni + etcd-server: scripts/test does (ensure_patroni)'; exit 1; }}; \
             start_patroni {} {etcd} {} {} {} {} {etcd_peer}",
            pair.dir.display(),
            pg_ports[0],
            rest_ports[0],
            pg_ports[1],
            rest_ports[1]
        ));
        if out.status.success() {
            return Ok(pair);
        }
        // Dropping `pair` kills whatever of it did start.
        Err(format!(
            "the Patroni pair did not start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{database}?target_session_attrs=read-write",
            self.pg_ports[0], self.pg_ports[1]
        )
    }

    /// The members as Patroni's REST API lists them: (name, role, port).
    async fn members(&self) -> Vec<(String, String, u16)> {
        for port in self.rest_ports {
            let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/cluster")).await else {
                continue;
            };
            let Ok(cluster) = r.json::<Value>().await else {
                continue;
            };
            return cluster["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["name"].as_str().unwrap().to_owned(),
                        m["role"].as_str().unwrap().to_owned(),
                        m["port"].as_u64().unwrap() as u16,
                    )
                })
                .collect();
        }
        Vec::new()
    }

    async fn leader(&self) -> Option<(String, u16)> {
        self.members()
            .await
            .into_iter()
            .find(|(_, role, _)| role == "leader")
            .map(|(name, _, port)| (name, port))
    }

    /// `kill -9` of a member's Patroni and its PostgreSQL.
    fn kill(&self, member: &str) {
        let pid = |file: &str| {
            let text = std::fs::read_to_string(self.dir.join(member).join(file)).unwrap();
            text.lines().next().unwrap().trim().to_owned()
        };
        kill9(&[&pid("patroni.pid"), &pid("data/postmaster.pid")]);
    }
}

impl Drop for PatroniPair {
    fn drop(&mut self) {
        bash(&format!("stop_patroni {}", self.dir.display()));
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

#[derive(Default)]
struct Outcomes {
    /// hold id -> seats, for every 201.
    acked: HashMap<String, usize>,
    /// (seconds since start, status) of every answer.
    answers: Vec<(f64, u16)>,
    /// Answers that break the rules (a 5xx other than 503, a 503 without Retry-After, no answer).
    wrong: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_postgres_primary_loses_no_acknowledged_hold() {
    let pair = PatroniPair::start();
    let database = format!("seatgrid_failover_{}", uuid::Uuid::new_v4().simple());
    let port = free_port();
    let prefix = format!("sgfail{}:", uuid::Uuid::new_v4().simple());
    let server = Server::start(server_env(&pair.url(&database), port, &prefix), None);
    server.ready().await;
    let url = server.url.clone();
    let event = create_event(&url, "Failover", 40, 50, 1_000).await;

    let start = Instant::now();
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let next_seat = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, event) = (client.clone(), url.clone(), event.clone());
            let (outcomes, next_seat, stop) = (outcomes.clone(), next_seat.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let seat = next_seat.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if seat >= 2_000 {
                        return;
                    }
                    let key = uuid::Uuid::new_v4().to_string();
                    // One request, retried with its key until answered (or the test stops).
                    loop {
                        let answer = client
                            .post(format!("{url}/api/events/{event}/holds"))
                            .header("authorization", bearer(&format!("fan{seat}"), Role::Buyer))
                            .header("idempotency-key", &key)
                            .json(&json!({"seats": [seat]}))
                            .send()
                            .await;
                        let at = start.elapsed().as_secs_f64();
                        let note = |what: String| outcomes.lock().unwrap().wrong.push(what);
                        let response = match answer {
                            Ok(response) => response,
                            Err(e) => return note(format!("{at:.1}s: no answer: {e}")),
                        };
                        let status = response.status().as_u16();
                        outcomes.lock().unwrap().answers.push((at, status));
                        match status {
                            201 => {
                                let hold: Value = response.json().await.unwrap();
                                let seats = hold["seats"].as_array().unwrap().len();
                                let id = hold["hold_id"].as_str().unwrap().to_owned();
                                outcomes.lock().unwrap().acked.insert(id, seats);
                                break;
                            }
                            // 503: the store is lost; 409 in flight: the same key's run that
                            // met the loss is not reopened yet. Both say when to retry.
                            503 | 409 => {
                                if !response.headers().contains_key("retry-after") {
                                    note(format!("{at:.1}s: {status} without Retry-After"));
                                }
                                if status == 409 {
                                    let body = response.text().await.unwrap_or_default();
                                    if !body.contains("idempotency_request_in_flight") {
                                        return note(format!("{at:.1}s: 409 {body}"));
                                    }
                                }
                                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                                    return;
                                }
                                tokio::time::sleep(Duration::from_millis(250)).await;
                            }
                            other => {
                                let body = response.text().await.unwrap_or_default();
                                note(format!("{at:.1}s: {other} {body}"));
                                break;
                            }
                        }
                    }
                }
            })
        })
        .collect();

    // Load on the first primary, then kill it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (old_leader, old_port) = pair.leader().await.expect("a leader");
    pair.kill(&old_leader);
    let killed_at = start.elapsed().as_secs_f64();

    // Wait for holds to be answered 201 again, then a little more load on the new primary.
    let deadline = Instant::now() + BACK_WITHIN + Duration::from_secs(10);
    let back_at = loop {
        let back = outcomes
            .lock()
            .unwrap()
            .answers
            .iter()
            .find(|(at, status)| *at > killed_at + 0.5 && *status == 201)
            .map(|(at, _)| *at);
        if let Some(at) = back {
            break at;
        }
        assert!(Instant::now() < deadline, "holds not answered again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    let unavailable = outcomes.answers.iter().filter(|(_, s)| *s == 503).count();
    let in_flight = outcomes.answers.iter().filter(|(_, s)| *s == 409).count();
    eprintln!(
        "primary {old_leader} killed at {killed_at:.1}s; holds answered again at {back_at:.1}s \
         ({:.1}s later); {} holds acknowledged, {unavailable} answers 503, {in_flight} 409 in flight",
        back_at - killed_at,
        outcomes.acked.len()
    );
    assert!(outcomes.wrong.is_empty(), "{:?}", outcomes.wrong);
    assert!(
        back_at - killed_at < BACK_WITHIN.as_secs_f64(),
        "service back after {:.1}s",
        back_at - killed_at
    );
    assert!(unavailable > 0, "the kill was never noticed");

    // Every acknowledged hold is in the promoted primary's store; no seat held twice.
    let (_, new_port) = pair.leader().await.expect("a new leader");
    assert_ne!(new_port, old_port, "the standby was promoted");
    let store = sqlx::PgPool::connect(&format!(
        "postgres://postgres@127.0.0.1:{new_port}/{database}"
    ))
    .await
    .unwrap();
    let events = projections::EventLog::new(store).read_all().await.unwrap();
    let mut held: HashMap<String, usize> = HashMap::new();
    let mut seats_taken = HashSet::new();
    for e in &events {
        if let Ok(Some(StoredEvent::Block(b @ SeatBlockEvent::SeatHeld(_)))) =
            StoredEvent::decode(&e.aggregate_type, e.payload.get())
        {
            let c = b.change();
            *held.entry(c.hold_id.to_string()).or_default() += c.seats.len();
            for seat in &c.seats {
                assert!(
                    seats_taken.insert((e.aggregate_id.clone(), seat.0)),
                    "seat {} of {} held twice",
                    seat.0,
                    e.aggregate_id
                );
            }
        }
    }
    for (id, seats) in &outcomes.acked {
        assert_eq!(held.get(id), Some(seats), "acknowledged hold {id} lost");
    }
    assert!(
        outcomes.acked.len() > 10,
        "too little load to prove anything"
    );
}
