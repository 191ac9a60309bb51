//! ClickHouse ingestion benchmark: sustained rate from a backlog, and visibility lag under a
//! steady write rate. Run it through `scripts/bench-ingest`, which records the figures in
//! docs/BENCHMARKS.md. Arguments: `--events N` (backlog, default 200000), `--rate R` (events/s for
//! the lag phase, default 500), `--seconds S` (lag phase length, default 15).
//!
//! The backlog is written straight into the event store with SQL (valid `SeatHeld` events of a real
//! ticketed event, one stream each), so the figure is the ingester's, not the command path's.

use domain::stored::{aggregate_type::SEAT_BLOCK, event_type::SEAT_HELD};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use analytics::{IngestConfig, Ingester, CLICKHOUSE_STREAM};
use booking::EventStore;
use booking::{BookingCommands, BookingService, Caller, RequestContext, RetryPolicy};
use clickhouse::Row;
use domain::{EventPolicy, LayoutSpec, NewEvent};
use projections::Checkpoints;
use serde::Deserialize;
use sqlx::PgPool;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

async fn append_synthetic(pool: &PgPool, event_id: uuid::Uuid, from: u64, count: u64, seats: u64) {
    sqlx::query(&format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT '{SEAT_BLOCK}', 'bench-' || g, 1, '{SEAT_HELD}', '1',
                jsonb_build_object('{SEAT_HELD}', jsonb_build_object(
                    'event_id', $1::text, 'hold_id', md5(g::text)::uuid::text,
                    'customer_id', 'fan' || (g % 5000), 'seats', jsonb_build_array(g % $4),
                    'expires_at', to_char(now() + interval '10 minutes', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                    'at', to_char(clock_timestamp(), 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))),
                '{{}}'::jsonb
           FROM generate_series($2::bigint, $2::bigint + $3::bigint - 1) AS g"
    ))
    .bind(event_id.to_string())
    .bind(from as i64)
    .bind(count as i64)
    .bind(seats as i64)
    .execute(pool)
    .await
    .expect("synthetic events");
}

#[derive(Row, Deserialize)]
struct Count {
    n: u64,
}

#[derive(Row, Deserialize)]
struct Stream {
    stream_id: String,
}

async fn wait_caught_up(pool: &PgPool) {
    let checkpoints = Checkpoints::new(pool.clone());
    while checkpoints
        .lag(CLICKHOUSE_STREAM)
        .await
        .unwrap()
        .events_behind
        > 0
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() {
    let backlog = arg("--events", 200_000);
    let rate = arg("--rate", 500);
    let seconds = arg("--seconds", 15);
    let db = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/seatgrid_bench_ingest".into());
    migrations::ensure_database(&db).await.unwrap();
    let pool = PgPool::connect(&db).await.unwrap();
    migrations::run_postgres(&pool).await.unwrap();
    let ch = analytics::testing::config(&analytics::testing::server_url(), "seatgrid_bench_ingest");
    ch.migrate().await.unwrap();

    let service = BookingService::new(
        EventStore::new(pool.clone(), RetryPolicy::default()),
        EventPolicy::default(),
    );
    let event = service
        .create_event(
            NewEvent {
                organizer: None,
                name: "Ingest bench".into(),
                venue: None,
                starts_at: None,
                currency: None,
                layout: LayoutSpec::grid(100, 200, 1000).unwrap(),
                hold_seconds: None,
                max_seats_per_customer: None,
            },
            &Caller::new(
                domain::CustomerId::parse("organizer").unwrap(),
                booking::Role::Organizer,
            ),
            &RequestContext::default(),
        )
        .await
        .unwrap();
    let start_position: i64 = sqlx::query_scalar("SELECT COALESCE(max(position), 0) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let seats = u64::from(event.seat_count);

    // Phase 1: a backlog, ingested from a standing start.
    let mut written = 0;
    while written < backlog {
        let n = (backlog - written).min(50_000);
        append_synthetic(&pool, event.id, start_position as u64 + written, n, seats).await;
        written += n;
    }
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let started = Instant::now();
    let ingester =
        tokio::spawn(Ingester::new(pool.clone(), ch.writer(), IngestConfig::default()).run());
    wait_caught_up(&pool).await;
    let took = started.elapsed().as_secs_f64();
    let in_ch = ch
        .writer()
        .with_setting("wait_end_of_query", "1")
        .query("SELECT count() AS n FROM domain_events FINAL")
        .fetch_one::<Count>()
        .await
        .unwrap()
        .n;
    println!(
        "backlog: {total} events ingested in {took:.2} s = {:.0} events/s (rows in ClickHouse: {in_ch})",
        total as f64 / took
    );

    // Phase 2: a steady write rate. Every 50th event is a marker; one poller asks ClickHouse every
    // 10 ms which pending markers are visible, so each lag is measured when first seen.
    let pending: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let lags: Arc<Mutex<Vec<f64>>> = Arc::default();
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let poller = {
        let (pending, lags, writing) = (pending.clone(), lags.clone(), writing.clone());
        let reader = ch.writer().with_setting("wait_end_of_query", "1");
        tokio::spawn(async move {
            loop {
                let ids: Vec<String> = pending.lock().unwrap().keys().cloned().collect();
                if ids.is_empty() {
                    if !writing.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                } else {
                    let list = ids
                        .iter()
                        .map(|i| format!("'{i}'"))
                        .collect::<Vec<_>>()
                        .join(",");
                    let seen = reader
                        .query(&format!(
                            "SELECT stream_id FROM domain_events WHERE stream_id IN ({list})"
                        ))
                        .fetch_all::<Stream>()
                        .await
                        .unwrap_or_default();
                    let mut pending = pending.lock().unwrap();
                    for s in seen {
                        if let Some(at) = pending.remove(&s.stream_id) {
                            lags.lock()
                                .unwrap()
                                .push(at.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let tick = Duration::from_secs_f64(1.0 / rate as f64);
    let mut next = start_position as u64 + backlog + 10;
    let phase = Instant::now();
    let mut interval = tokio::time::interval(tick);
    while phase.elapsed() < Duration::from_secs(seconds) {
        interval.tick().await;
        append_synthetic(&pool, event.id, next, 1, seats).await;
        if next.is_multiple_of(50) {
            pending
                .lock()
                .unwrap()
                .insert(format!("bench-{next}"), Instant::now());
        }
        next += 1;
    }
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    poller.await.unwrap();
    ingester.abort();
    let mut lags = lags.lock().unwrap().clone();
    lags.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| lags[((q * (lags.len() - 1) as f64).round() as usize).min(lags.len() - 1)];
    println!(
        "steady {rate} events/s for {seconds} s: visibility lag (commit to row in ClickHouse), \
         {} samples: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        lags.len(),
        p(0.5),
        p(0.95),
        lags.last().unwrap()
    );
}
