//! What the ingestion tests share: a venue, a concurrent sale, a fresh database and ClickHouse
//! database, an ingester and the wait for it.

use std::sync::Arc;
use std::time::Duration;

use analytics::testing::fresh_config;
use analytics::{ClickHouseConfig, IngestConfig, Ingester, CLICKHOUSE_STREAM};
use booking::EventStore;
use booking::{BookingCommands, BookingService, Caller, RequestContext, RetryPolicy};
use clickhouse::Row;
use domain::{
    EventId, EventPolicy, HoldId, LayoutSpec, NewEvent, PriceTier, RowSpec, SeatRef, SectionSpec,
};
use migrations::testing::fresh_database;
use projections::Checkpoints;
use serde::Deserialize;
use sqlx::PgPool;

pub fn organizer() -> Caller {
    Caller::new(
        domain::CustomerId::parse("organizer").unwrap(),
        booking::Role::Organizer,
    )
}

pub fn ctx() -> RequestContext {
    RequestContext {
        correlation_id: "analytics-test".into(),
        id_seed: None,
    }
}

pub fn venue() -> NewEvent {
    let rows = |labels: &[&str], seats| {
        labels
            .iter()
            .map(|l| RowSpec {
                label: (*l).into(),
                seats,
            })
            .collect()
    };
    NewEvent {
        organizer: None,
        name: "Analytics night".into(),
        venue: None,
        starts_at: None,
        currency: Some("EUR".into()),
        layout: LayoutSpec {
            price_tiers: vec![
                PriceTier {
                    name: "Premium".into(),
                    price_cents: 9_000,
                },
                PriceTier {
                    name: "Standard".into(),
                    price_cents: 4_500,
                },
            ],
            sections: vec![
                SectionSpec {
                    name: "Stalls".into(),
                    price_tier: "Premium".into(),
                    rows: rows(&["A", "B"], 20),
                },
                SectionSpec {
                    name: "Circle".into(),
                    price_tier: "Standard".into(),
                    rows: rows(&["1", "2"], 20),
                },
            ],
            focal_point: None,
        },
        hold_seconds: Some(600),
        max_seats_per_customer: Some(6),
    }
}

/// A concurrent sale: customers race for overlapping seats, then book, release or walk away.
///
/// Customers `c`, `c + 26` and `c + 52` want the same two seats and do three different things
/// with a hold (`c % 3` differs), so each of the 26 contested pairs has one customer who would
/// book it and the race decides who gets there first. With 20 fans, a fan in a 60-customer sale
/// asks for at most 6 seats, the venue's limit, so races and not the limit decide the holds.
pub async fn sale(service: Arc<BookingService>, event_id: EventId, customers: u32) {
    let tasks: Vec<_> = (0..customers)
        .map(|c| {
            let service = service.clone();
            tokio::spawn(async move {
                let customer = Caller::buyer(&format!("fan{}", c % 20)).unwrap();
                let first = (c * 3) % 78;
                let seats = vec![SeatRef::Id(first), SeatRef::Id(first + 1)];
                if let Ok(hold) = service
                    .hold_seats(event_id, &customer, seats.into(), &ctx())
                    .await
                {
                    let id = HoldId(hold.hold_id);
                    match c % 3 {
                        0 => drop(service.book_hold(id, &organizer(), &ctx()).await),
                        1 => drop(service.release_hold(id, &customer, &ctx()).await),
                        _ => {}
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

pub async fn wait_ingested(pool: &PgPool) {
    let checkpoints = Checkpoints::new(pool.clone());
    for _ in 0..1_000 {
        if checkpoints
            .lag(CLICKHOUSE_STREAM)
            .await
            .unwrap()
            .events_behind
            == 0
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the ingester did not catch up");
}

pub fn start_ingester(pool: &PgPool, ch: &ClickHouseConfig) -> tokio::task::JoinHandle<()> {
    let ingester = Ingester::new(
        pool.clone(),
        ch.writer(),
        IngestConfig {
            max_rows: 25,
            max_delay: Duration::from_millis(100),
            poll_interval: Duration::from_millis(20),
        },
    );
    tokio::spawn(ingester.run())
}

#[derive(Row, Deserialize)]
pub struct Count {
    pub n: u64,
}

pub async fn distinct_rows(ch: &ClickHouseConfig) -> u64 {
    ch.writer()
        .with_setting("wait_end_of_query", "1")
        .query("SELECT count() AS n FROM domain_events FINAL")
        .fetch_one::<Count>()
        .await
        .unwrap()
        .n
}

pub async fn setup(url: &str) -> (PgPool, Arc<BookingService>, ClickHouseConfig) {
    let (_, pool) = fresh_database(12).await;
    let ch = fresh_config(url);
    ch.migrate().await.expect("ClickHouse schema");
    let service = Arc::new(BookingService::new(
        EventStore::new(pool.clone(), RetryPolicy::default()),
        EventPolicy::default(),
    ));
    (pool, service, ch)
}
