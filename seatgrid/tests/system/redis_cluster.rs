//! SeatGrid on a Redis Cluster (`scripts/lib/redis_cluster.sh`: three masters of Debian's
//! redis-server in cluster mode, a replica each): the seat map is cached on the master of its
//! event's hash slot; that master is killed (`kill -9`); while its replica takes over, every seat
//! map read still says exactly what the event store says (read from PostgreSQL when the cache
//! cannot answer); afterwards holds are cached and published again, and a GraphQL subscriber
//! (whose pub/sub node may have been the one lost) sees them.

use std::process::Command;
use std::time::{Duration, Instant};

use booking::Role;
use serde_json::{json, Value};

use crate::helpers::subscribe_to;
use crate::payments_mock::free_port;
use crate::processes::{bearer, create_event, kill9, script_lib, seat_map, server_env, Server};

/// Six redis-server processes in cluster mode; killed when dropped.
struct RedisCluster {
    dir: std::path::PathBuf,
    ports: Vec<u16>,
}

fn bash(script: &str) -> std::process::Output {
    script_lib("redis_cluster.sh", script)
}

/// A free port whose cluster bus port (+10000) is free too.
fn free_port_with_bus() -> u16 {
    loop {
        let port = 20_000 + (uuid::Uuid::new_v4().as_u128() % 20_000) as u16;
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10_000) {
            return port;
        }
    }
}

impl RedisCluster {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("seatgrid-redis-{}", uuid::Uuid::new_v4()));
        let ports: Vec<u16> = (0..6).map(|_| free_port_with_bus()).collect();
        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
        let out = bash(&format!(
            "start_redis_cluster {} {}",
            dir.display(),
            list.join(" ")
        ));
        assert!(
            out.status.success(),
            "the Redis Cluster did not start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir, ports }
    }

    /// `REDIS_URL` naming the three masters as seeds.
    fn url(&self) -> String {
        let hosts: Vec<String> = self.ports[..3]
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis://{}", hosts.join(","))
    }

    fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(port.to_string())
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The port of the master serving `key`'s slot, asked of the node on `via`.
    fn master_of(&self, via: u16, key: &str) -> u16 {
        let slot: u16 = self.cli(via, &["cluster", "keyslot", key]).parse().unwrap();
        for line in self.cli(via, &["cluster", "nodes"]).lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            if !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let serves = fields[8..].iter().any(|range| {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                match (lo.parse::<u16>(), hi.parse::<u16>()) {
                    (Ok(lo), Ok(hi)) => (lo..=hi).contains(&slot),
                    _ => false,
                }
            });
            if serves {
                let addr = fields[1].split('@').next().unwrap();
                return addr.rsplit_once(':').unwrap().1.parse().unwrap();
            }
        }
        panic!("no master serves slot {slot}");
    }

    fn kill(&self, port: u16) {
        let pid = std::fs::read_to_string(self.dir.join(port.to_string()).join("pid")).unwrap();
        kill9(&[&pid]);
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        bash(&format!("stop_redis_cluster {}", self.dir.display()));
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

async fn hold(client: &reqwest::Client, url: &str, event: &str, seat: u32) {
    let response = client
        .post(format!("{url}/api/events/{event}/holds"))
        .header("authorization", bearer(&format!("fan{seat}"), Role::Buyer))
        .json(&json!({"seats": [seat]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

/// Waits until the cached (default) seat map equals the store's.
async fn cached_map_catches_up(client: &reqwest::Client, url: &str, event: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let truth = seat_map(client, url, event, true).await;
        let cached = seat_map(client, url, event, false).await;
        if cached["seats"] == truth["seats"] {
            return truth;
        }
        assert!(Instant::now() < deadline, "cached map behind: {cached}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_master_failover_gives_no_wrong_read() {
    let cluster = RedisCluster::start();
    let (db_url, _pool) = migrations::testing::fresh_database(2).await;
    let prefix = format!("sgrc{}:", uuid::Uuid::new_v4().simple());
    let mut env = server_env(&db_url, free_port(), &prefix);
    env.retain(|(k, _)| k != "REDIS_URL");
    env.push(("REDIS_URL".into(), cluster.url()));
    let server = Server::start(env, None);
    server.ready().await;
    let (url, client) = (server.url.clone(), reqwest::Client::new());
    let event = create_event(&url, "Cluster cache", 10, 20, 1_000).await;
    let mut updates = subscribe_to(
        &format!("{}/graphql/ws", url.replace("http://", "ws://")),
        None,
        "subscription($e: UUID!) { seatUpdates(eventId: $e) { seatId status } }",
        json!({"e": event}),
    )
    .await;
    for seat in 0..40 {
        hold(&client, &url, &event, seat).await;
    }
    let before = cached_map_catches_up(&client, &url, &event).await;
    assert_eq!(before["held"], 40);

    // The map is cached on the master of the event's slot; kill that master.
    let key = format!("{prefix}{{{event}}}:seats");
    let master = cluster.master_of(cluster.ports[0], &key);
    assert_eq!(cluster.cli(master, &["-c", "exists", &key]), "1");
    cluster.kill(master);
    let survivor = *cluster.ports.iter().find(|p| **p != master).unwrap();

    // While the replica takes over (cluster-node-timeout 2 s), every read is right.
    let until = Instant::now() + Duration::from_secs(6);
    let mut reads = 0;
    while Instant::now() < until {
        let read = seat_map(&client, &url, &event, false).await;
        assert_eq!(
            read["seats"], before["seats"],
            "a wrong read during failover"
        );
        reads += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cluster
        .cli(survivor, &["cluster", "info"])
        .contains("cluster_state:ok")
    {
        assert!(Instant::now() < deadline, "the replica never took over");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let promoted = cluster.master_of(survivor, &key);
    assert_ne!(promoted, master);
    eprintln!(
        "master {master} killed; {reads} reads during failover, all right; {promoted} took over"
    );

    // Holds after the failover: cached and published again.
    for seat in 40..60 {
        hold(&client, &url, &event, seat).await;
    }
    let after = cached_map_catches_up(&client, &url, &event).await;
    assert_eq!(after["held"], 60);
    let deadline = Instant::now() + Duration::from_secs(15);
    while cluster.cli(promoted, &["-c", "exists", &key]) != "1" {
        assert!(
            Instant::now() < deadline,
            "the seat map is not cached again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The subscriber sees seat 59 held (after a resync, if its pub/sub node was the one lost).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let data = updates.next_data().await;
        let update = &data["seatUpdates"];
        if update["seatId"] == 59 && update["status"] == "HELD" {
            break;
        }
        assert!(Instant::now() < deadline, "no update for seat 59");
    }
}
