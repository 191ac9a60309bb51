//! The ClickHouse stream on real servers: every report agrees with the event store after a
//! concurrent booking run, and crashes of the ingester or of ClickHouse lose nothing and count
//! nothing twice.

use domain::stored::aggregate_type::SEAT_BLOCK;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use analytics::reports::Reports;
use analytics::testing::{fresh_config, server_url};
use analytics::{ClickHouseConfig, EventRow, IngestConfig, Ingester, CLICKHOUSE_STREAM};
use booking::EventStore;
use booking::{BookingCommands, BookingService, Caller, RequestContext, RetryPolicy};
use clickhouse::Row;
use domain::{
    EventId, EventPolicy, HoldId, LayoutSpec, NewEvent, OrderId, PriceTier, RowSpec,
    SeatBlockEvent, SeatRef, SectionSpec,
};
use migrations::testing::fresh_database;
use projections::{Checkpoints, EventLog};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

fn organizer() -> Caller {
    Caller::new(
        domain::CustomerId::parse("organizer").unwrap(),
        booking::Role::Organizer,
    )
}

fn ctx() -> RequestContext {
    RequestContext {
        correlation_id: "analytics-test".into(),
        id_seed: None,
    }
}

fn venue() -> NewEvent {
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
async fn sale(service: Arc<BookingService>, event_id: EventId, customers: u32) {
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

async fn wait_ingested(pool: &PgPool) {
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

fn start_ingester(pool: &PgPool, ch: &ClickHouseConfig) -> tokio::task::JoinHandle<()> {
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
struct Count {
    n: u64,
}

async fn distinct_rows(ch: &ClickHouseConfig) -> u64 {
    ch.writer()
        .with_setting("wait_end_of_query", "1")
        .query("SELECT count() AS n FROM domain_events FINAL")
        .fetch_one::<Count>()
        .await
        .unwrap()
        .n
}

async fn setup(url: &str) -> (PgPool, Arc<BookingService>, ClickHouseConfig) {
    let (_, pool) = fresh_database(12).await;
    let ch = fresh_config(url);
    ch.migrate().await.expect("ClickHouse schema");
    let service = Arc::new(BookingService::new(
        EventStore::new(pool.clone(), RetryPolicy::default()),
        EventPolicy::default(),
    ));
    (pool, service, ch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_report_agrees_with_the_event_store() {
    let (pool, service, ch) = setup(&server_url()).await;
    let ingester = start_ingester(&pool, &ch);
    let event = service
        .create_event(venue(), &organizer(), &ctx())
        .await
        .unwrap();
    let event_id = EventId(event.id);
    sale(service.clone(), event_id, 60).await;
    wait_ingested(&pool).await;
    ingester.abort();

    // The same figures, straight from the event store.
    let events = EventLog::new(pool.clone()).read_all().await.unwrap();
    let layout = domain::VenueLayout::new(venue().layout).unwrap();
    let mut held_per_minute: BTreeMap<i64, u64> = BTreeMap::new();
    let mut booked_per_minute: BTreeMap<i64, u64> = BTreeMap::new();
    let (mut holds, mut booked, mut expired) = (HashSet::new(), HashSet::new(), HashSet::new());
    let mut row_holds: HashMap<(String, String), u64> = HashMap::new();
    let mut seat_holds: HashMap<u32, u64> = HashMap::new();
    let mut revenue: HashMap<String, u64> = HashMap::new();
    let mut customer_booked: HashMap<String, u64> = HashMap::new();
    for e in events.iter().filter(|e| e.aggregate_type == SEAT_BLOCK) {
        let block: SeatBlockEvent = serde_json::from_str(e.payload.get()).unwrap();
        let c = block.change();
        let minute = c.at.timestamp() / 60 * 60;
        match &block {
            SeatBlockEvent::SeatHeld(_) => {
                holds.insert(c.hold_id);
                *held_per_minute.entry(minute).or_default() += c.seats.len() as u64;
                for s in &c.seats {
                    let l = layout.label(*s).unwrap();
                    *row_holds.entry((l.section, l.row)).or_default() += 1;
                    *seat_holds.entry(s.0).or_default() += 1;
                }
            }
            SeatBlockEvent::SeatBooked(_) => {
                booked.insert(c.hold_id);
                *booked_per_minute.entry(minute).or_default() += c.seats.len() as u64;
                *customer_booked
                    .entry(c.customer_id.to_string())
                    .or_default() += c.seats.len() as u64;
                for s in &c.seats {
                    let l = layout.label(*s).unwrap();
                    *revenue.entry(l.price_tier).or_default() += l.price_cents;
                }
            }
            SeatBlockEvent::HoldExpired(_) => {
                expired.insert(c.hold_id);
            }
            SeatBlockEvent::BookingUndone(_) => {
                booked.remove(&c.hold_id);
                expired.insert(c.hold_id);
                *booked_per_minute.entry(minute).or_default() -= c.seats.len() as u64;
                *customer_booked
                    .entry(c.customer_id.to_string())
                    .or_default() -= c.seats.len() as u64;
                for s in &c.seats {
                    let l = layout.label(*s).unwrap();
                    *revenue.entry(l.price_tier).or_default() -= l.price_cents;
                }
            }
            SeatBlockEvent::SeatReleased(_) | SeatBlockEvent::HoldExtended { .. } => {}
        }
    }
    assert!(!booked.is_empty(), "the sale booked something");

    let reports = Reports::new(ch.writer());
    let id = event.id;
    let velocity = reports.velocity(id).await.unwrap();
    for v in &velocity {
        assert_eq!(
            v.seats_held,
            held_per_minute
                .get(&i64::from(v.minute))
                .copied()
                .unwrap_or(0)
        );
        assert_eq!(
            v.seats_booked,
            booked_per_minute
                .get(&i64::from(v.minute))
                .copied()
                .unwrap_or(0)
        );
    }
    assert_eq!(
        velocity.iter().map(|v| v.seats_held).sum::<u64>(),
        held_per_minute.values().sum::<u64>()
    );

    let conversion = reports.conversion(id).await.unwrap();
    assert_eq!(conversion.holds, holds.len() as u64);
    assert_eq!(conversion.booked, booked.len() as u64);
    assert_eq!(conversion.expired, expired.len() as u64);
    assert_eq!(
        conversion.seats_booked,
        booked_per_minute.values().sum::<u64>()
    );

    let sell_out = reports.sell_out(id).await.unwrap();
    assert_eq!(sell_out.capacity, 80);
    assert!(!sell_out.sold_out());

    for h in reports.heat(id).await.unwrap() {
        assert_eq!(
            h.seat_holds,
            row_holds[&(h.section.clone(), h.row.clone())],
            "{h:?}"
        );
    }
    let hot = reports.hot_seats(id, 5).await.unwrap();
    let max_holds = seat_holds.values().max().copied().unwrap();
    assert_eq!(hot[0].holds, max_holds);
    assert_eq!(hot[0].holds, seat_holds[&hot[0].seat_id]);

    let by_tier: HashMap<String, u64> = reports
        .revenue_by_tier(id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.price_tier, t.revenue_cents))
        .collect();
    assert_eq!(by_tier, revenue);

    let top = reports.top_customers(id, 3).await.unwrap();
    let most = customer_booked.values().max().copied().unwrap();
    assert_eq!(top[0].seats_booked, most);
    assert_eq!(top[0].seats_booked, customer_booked[&top[0].customer_id]);
}

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

/// A payment's outcome for `order`, as the webhook records it (the provider's id is per order).
fn news(
    id: &str,
    kind: booking::payments::WebhookType,
    order: &booking::orders::OrderView,
) -> booking::payments::WebhookEvent {
    use booking::payments::{WebhookData, WebhookEvent, WebhookObject};
    WebhookEvent {
        id: id.into(),
        kind,
        created: chrono::Utc::now().timestamp(),
        data: WebhookData {
            object: WebhookObject {
                id: format!("pi_{}", order.order_id.simple()),
                order_id: order.order_id,
                amount_cents: order.amount_cents,
                currency: order.currency.clone(),
                failure_reason: Some("card_declined".into()),
            },
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_report_counts_money_from_confirmed_orders_and_refunds() {
    use booking::payments::WebhookType::{PaymentFailed, PaymentSucceeded, RefundSucceeded};
    let (pool, service, ch) = setup(&server_url()).await;
    let ingester = start_ingester(&pool, &ch);
    let event = service
        .create_event(venue(), &organizer(), &ctx())
        .await
        .unwrap();
    let event_id = EventId(event.id);
    // Five buyers, each ordering two Premium seats (2 x 9,000): two pay, one is refunded after
    // cancelling, one's payment fails, one cancels before paying.
    let mut orders = Vec::new();
    for b in 0..5u32 {
        let buyer = Caller::buyer(&format!("buyer{b}")).unwrap();
        let seats = vec![SeatRef::Id(b * 2), SeatRef::Id(b * 2 + 1)];
        let hold = service
            .hold_seats(event_id, &buyer, seats.into(), &ctx())
            .await
            .unwrap();
        let order = service
            .place_order(vec![HoldId(hold.hold_id)], &buyer, &ctx())
            .await
            .unwrap();
        assert_eq!(order.amount_cents, 18_000);
        orders.push((buyer, order));
    }
    let settle = |o: &booking::orders::OrderView| service.settle_order(OrderId(o.order_id));
    for (i, (buyer, order)) in orders.iter().enumerate() {
        let outcome = match i {
            0..=2 => PaymentSucceeded,
            3 => PaymentFailed,
            _ => {
                service
                    .cancel_order(OrderId(order.order_id), buyer, &ctx())
                    .await
                    .unwrap();
                settle(order).await.unwrap();
                continue;
            }
        };
        service
            .record_payment(news(&format!("evt_{i}"), outcome, order), &ctx())
            .await
            .unwrap();
        settle(order).await.unwrap();
    }
    let (buyer, refunded) = &orders[2];
    service
        .cancel_order(OrderId(refunded.order_id), buyer, &ctx())
        .await
        .unwrap();
    service
        .record_payment(news("evt_refund", RefundSucceeded, refunded), &ctx())
        .await
        .unwrap();
    settle(refunded).await.unwrap();
    wait_ingested(&pool).await;
    ingester.abort();

    let report = Reports::new(ch.writer()).orders(event.id).await.unwrap();
    assert_eq!(
        (report.orders, report.paid, report.confirmed),
        (5, 3, 3),
        "{report:?}"
    );
    assert_eq!(
        (report.payment_failed, report.cancelled, report.refunded),
        (1, 1, 1)
    );
    assert_eq!(report.revenue_cents, 2 * 18_000, "confirmed and kept");
    assert_eq!(report.refunded_cents, 18_000);
    assert!((report.payment_failure_rate() - 0.25).abs() < 1e-9);
    assert!(report.time_to_pay_p95_ms >= report.time_to_pay_p50_ms);
    assert!(report.time_to_pay_p50_ms >= 0 && report.time_to_confirm_p95_ms > 0);
}

/// Every report of one event, as a comparable text.
async fn all_reports(ch: &ClickHouseConfig, id: Uuid) -> Vec<String> {
    let r = Reports::new(ch.writer());
    vec![
        format!("{:?}", r.velocity(id).await.unwrap()),
        format!("{:?}", r.conversion(id).await.unwrap()),
        format!("{:?}", r.sell_out(id).await.unwrap()),
        format!("{:?}", r.heat(id).await.unwrap()),
        format!("{:?}", r.hot_seats(id, 10).await.unwrap()),
        format!("{:?}", r.revenue_by_tier(id).await.unwrap()),
        format!("{:?}", r.orders(id).await.unwrap()),
        format!("{:?}", r.top_customers(id, 10).await.unwrap()),
    ]
}

/// The sharded layout (two shards of the local server's `seatgrid_shards` cluster, in
/// scripts/clickhouse/config.xml) gives every report the same answer as one server, from the same
/// event store: the events are streamed into both, one after the other, and a batch is streamed
/// twice into the shards (exactly once in effect there too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_reports_equal_the_single_server_ones() {
    let (pool, service, single) = setup(&server_url()).await;
    let event = service
        .create_event(venue(), &organizer(), &ctx())
        .await
        .unwrap();
    sale(service.clone(), EventId(event.id), 60).await;
    let ingester = start_ingester(&pool, &single);
    wait_ingested(&pool).await;
    ingester.abort();

    let sharded = ClickHouseConfig {
        sharding: Some(analytics::Sharding {
            cluster: "seatgrid_shards".into(),
            shard_databases: vec!["seatgrid_shard_1".into(), "seatgrid_shard_2".into()],
        }),
        ..fresh_config(&server_url())
    };
    sharded.migrate().await.expect("the sharded schema");
    // The same events again, into the shards: from the start, twice over.
    for _ in 0..2 {
        sqlx::query(
            "UPDATE projection_checkpoints SET transaction_id = 0, position = 0, events_applied = 0
              WHERE name = $1",
        )
        .bind(CLICKHOUSE_STREAM)
        .execute(&pool)
        .await
        .unwrap();
        let ingester = start_ingester(&pool, &sharded);
        wait_ingested(&pool).await;
        ingester.abort();
    }
    // One row per event of this sale in both (the shards also hold other runs' events).
    let rows = |ch: ClickHouseConfig| async move {
        ch.writer()
            .with_setting("wait_end_of_query", "1")
            .query("SELECT count() AS n FROM domain_events FINAL WHERE event_id = ?")
            .bind(event.id.to_string())
            .fetch_one::<Count>()
            .await
            .unwrap()
            .n
    };
    let in_single = rows(single.clone()).await;
    assert!(in_single > 60, "{in_single}");
    assert_eq!(rows(sharded.clone()).await, in_single);
    let one = all_reports(&single, event.id).await;
    assert!(!one[1].contains("holds: 0,"), "{one:?}");
    assert_eq!(all_reports(&sharded, event.id).await, one);
}
