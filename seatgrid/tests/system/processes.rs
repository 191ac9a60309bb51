//! `seatgrid serve` as its own OS process, for the tests that kill it (`kill -9`) or run two.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use booking::Role;

pub const AUTH_SECRET: &str = "seatgrid-saga-test-secret-not-for-production";

/// `seatgrid serve` as its own process.
pub struct Server {
    child: Child,
    env: Vec<(String, String)>,
    pub url: String,
}

impl Server {
    pub fn start(env: Vec<(String, String)>, failpoints: Option<&str>) -> Self {
        let url = format!(
            "http://{}",
            env.iter().find(|(k, _)| k == "SEATGRID_LISTEN").unwrap().1
        );
        let mut command = Command::new(env!("CARGO_BIN_EXE_seatgrid"));
        command
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("FAILPOINTS")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(f) = failpoints {
            command.env("FAILPOINTS", f);
        }
        let child = command.spawn().expect("the seatgrid binary runs");
        Self { child, env, url }
    }

    pub async fn ready(&self) {
        for _ in 0..300 {
            if let Ok(r) = reqwest::get(format!("{}/health/ready", self.url)).await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not start");
    }

    /// SIGKILL, then the same server again without fail points.
    pub async fn kill_and_restart(mut self) -> Self {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
        let again = Server::start(std::mem::take(&mut self.env), None);
        again.ready().await;
        again
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn bearer(sub: &str, role: Role) -> String {
    let minter = booking::Authenticator::hs256(AUTH_SECRET.as_bytes()).unwrap();
    format!(
        "Bearer {}",
        minter.mint(sub, role, Duration::from_secs(600)).unwrap()
    )
}

/// The environment of a test server on `port` over `db_url` (no ClickHouse, no rate limits, no
/// payment provider), sharing Redis keys under `redis_prefix` with any other server given it.
pub fn server_env(db_url: &str, port: u16, redis_prefix: &str) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", db_url.to_owned()),
        ("REDIS_URL", crate::helpers::redis_url()),
        ("SEATGRID_REDIS_PREFIX", redis_prefix.to_owned()),
        ("SEATGRID_LISTEN", format!("127.0.0.1:{port}")),
        ("SEATGRID_RATE_LIMITS", "off".into()),
        ("CLICKHOUSE_URL", "off".into()),
        ("AUTH_HS256_SECRET", AUTH_SECRET.into()),
        ("RUST_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// A grid event created by organizer `olga` through `url`; its id.
pub async fn create_event(url: &str, name: &str, rows: u32, cols: u32, price_cents: u64) -> String {
    let event: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/api/events"))
        .header("authorization", bearer("olga", Role::Organizer))
        .json(&serde_json::json!({
            "name": name, "rows": rows, "cols": cols, "price_cents": price_cents
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    event["id"].as_str().unwrap().to_owned()
}

/// `GET /api/events/{event}/seats` at `url` (with `?consistency=strong` when `strong`), which must
/// answer 200.
pub async fn seat_map(
    client: &reqwest::Client,
    url: &str,
    event: &str,
    strong: bool,
) -> serde_json::Value {
    let consistency = if strong { "?consistency=strong" } else { "" };
    let response = client
        .get(format!("{url}/api/events/{event}/seats{consistency}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The event store's seat map (`A`, `H`, `B` per seat) as the server at `url` reads it.
pub async fn strong_seats(url: &str, event: &str) -> String {
    let map = seat_map(&reqwest::Client::new(), url, event, true).await;
    map["seats"].as_str().unwrap().to_owned()
}

/// Runs `script` in bash with `scripts/lib/services.sh` and `scripts/lib/{lib}` sourced (the same
/// functions `scripts/cluster` uses to start Patroni, a Redis Cluster ...).
pub fn script_lib(lib: &str, script: &str) -> std::process::Output {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/lib");
    Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -e; source {0}/services.sh; source {0}/{lib}; {script}",
            dir.display()
        ))
        .output()
        .expect("bash runs")
}

/// `kill -9` of each process.
pub fn kill9(pids: &[&str]) {
    let status = Command::new("kill")
        .arg("-9")
        .args(pids.iter().map(|p| p.trim()))
        .status()
        .unwrap();
    assert!(status.success(), "kill -9 {pids:?}");
}
