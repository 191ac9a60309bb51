//! Crashes of the ingester or of ClickHouse lose nothing and count nothing twice.

use std::process::{Child, Command};
use std::time::Duration;

use analytics::reports::Reports;
use analytics::testing::server_url;
use analytics::{EventRow, Ingester, CLICKHOUSE_STREAM};
use booking::BookingCommands;
use domain::EventId;
use projections::{Checkpoints, EventLog};
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingester_killed_mid_batch_and_a_resent_batch_count_exactly_once() {
    let (pool, service, ch) = setup(&server_url()).await;
    let event = service
        .create_event(venue(), &organizer(), &ctx())
        .await
        .unwrap();
    let writer = tokio::spawn(sale(service.clone(), EventId(event.id), 90));
    // The ingester is killed again and again while the sale runs.
    for round in 0..6u64 {
        let task = start_ingester(&pool, &ch);
        tokio::time::sleep(Duration::from_millis(60 + round * 37)).await;
        task.abort();
        let _ = task.await;
    }
    writer.await.unwrap();
    let task = start_ingester(&pool, &ch);
    wait_ingested(&pool).await;
    task.abort();

    let events = EventLog::new(pool.clone()).read_all().await.unwrap();
    assert_eq!(distinct_rows(&ch).await, events.len() as u64);
    let before = Reports::new(ch.writer())
        .conversion(event.id)
        .await
        .unwrap();

    // A crash after an insert but before its checkpoint re-sends the batch: send one twice.
    let mut layouts = analytics::rows::Layouts::new(pool.clone(), Default::default());
    let mut rows: Vec<EventRow> = Vec::new();
    for e in &events[..events.len().min(30)] {
        rows.push(layouts.row(e, 1).await.unwrap());
    }
    Ingester::insert(&ch.writer(), &rows).await.unwrap();
    Ingester::insert(&ch.writer(), &rows).await.unwrap();
    assert_eq!(distinct_rows(&ch).await, events.len() as u64);
    assert_eq!(
        Reports::new(ch.writer())
            .conversion(event.id)
            .await
            .unwrap(),
        before
    );
}

/// A private ClickHouse server on its own ports, so it can be killed without disturbing others.
struct PrivateClickHouse {
    dir: std::path::PathBuf,
    http_port: u16,
    child: Option<Child>,
}

impl PrivateClickHouse {
    fn start(dir: std::path::PathBuf, http_port: u16) -> Self {
        let mut server = Self {
            dir,
            http_port,
            child: None,
        };
        server.restart();
        server
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    fn restart(&mut self) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let template = std::fs::read_to_string(root.join("scripts/clickhouse/config.xml")).unwrap();
        for sub in ["data", "tmp", "log", "user_files", "format_schemas"] {
            std::fs::create_dir_all(self.dir.join(sub)).unwrap();
        }
        let config = template
            .replace("@DIR@", self.dir.to_str().unwrap())
            .replace(
                "<http_port>8123</http_port>",
                &format!("<http_port>{}</http_port>", self.http_port),
            )
            .replace(
                "<tcp_port>9000</tcp_port>",
                &format!("<tcp_port>{}</tcp_port>", self.http_port + 1),
            );
        std::fs::write(self.dir.join("config.xml"), config).unwrap();
        std::fs::copy(
            root.join("scripts/clickhouse/users.xml"),
            self.dir.join("users.xml"),
        )
        .unwrap();
        let child = Command::new("clickhouse-server")
            .arg(format!(
                "--config-file={}",
                self.dir.join("config.xml").display()
            ))
            .current_dir(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("clickhouse-server is installed (scripts/test installs it)");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    async fn wait_up(&self) {
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = client.get(format!("{}/ping", self.url())).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("private ClickHouse did not start");
    }
}

impl Drop for PrivateClickHouse {
    fn drop(&mut self) {
        self.kill();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingestion_catches_up_after_clickhouse_restarts_without_slowing_commands() {
    let dir = std::env::temp_dir().join(format!("seatgrid-ch-{}", Uuid::new_v4().simple()));
    let port = 18_123 + (std::process::id() % 500) as u16 * 2;
    let mut server = PrivateClickHouse::start(dir, port);
    server.wait_up().await;
    let (pool, service, ch) = setup(&server.url()).await;
    let ingester = start_ingester(&pool, &ch);
    let event = service
        .create_event(venue(), &organizer(), &ctx())
        .await
        .unwrap();
    sale(service.clone(), EventId(event.id), 20).await;
    wait_ingested(&pool).await;

    server.kill();
    // ClickHouse is away: commands go on as before (the ingester only waits).
    let started = std::time::Instant::now();
    sale(service.clone(), EventId(event.id), 40).await;
    assert!(started.elapsed() < Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        Checkpoints::new(pool.clone())
            .lag(CLICKHOUSE_STREAM)
            .await
            .unwrap()
            .events_behind
            > 0,
        "nothing could be ingested while ClickHouse was down"
    );

    server.restart();
    server.wait_up().await;
    wait_ingested(&pool).await;
    ingester.abort();
    let events = EventLog::new(pool.clone()).read_all().await.unwrap();
    assert_eq!(distinct_rows(&ch).await, events.len() as u64);
}
