//! The auditor: after the faults, compares what clients were told with what the system holds.
//!
//! Checks, from the event store, the read models, the API and ClickHouse:
//! - every acknowledged hold is in the store with all its seats; every acknowledged booking is
//!   booked in every block and never undone; every acknowledged release left its hold unbooked;
//! - no seat ever had two owners (each block replayed in order);
//! - no seat is held by a hold past its expiry plus the sweep interval (nothing stuck);
//! - every customer allowance counts exactly the seats its customer really has booked;
//! - the read models equal a fresh replay (seat maps and hold statuses), and the strong seat map
//!   the API serves says the same;
//! - ClickHouse has every stored event exactly once;
//! - orders: money and seats agree (see `audit/orders.rs`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use domain::{
    CustomerAllowance, HoldEvent, HoldStatus, HoldTrack, SeatBlock, SeatBlockEvent, SeatId,
    SeatStatus, StoredEvent,
};
use serde_json::Value;

mod journal;
mod orders;

use journal::{read_acks, Acks};

pub struct AuditArgs {
    pub url: String,
    pub database_url: String,
    pub out: PathBuf,
    pub clickhouse_url: Option<String>,
    pub clickhouse_database: String,
    /// How long after a hold's expiry the sweeper must have recorded it.
    pub sweep_slack: Duration,
}

#[derive(Default)]
struct Findings {
    checks: BTreeMap<&'static str, usize>,
    violations: Vec<String>,
}

impl Findings {
    fn check(&mut self, name: &'static str, ok: bool, what: impl FnOnce() -> String) {
        *self.checks.entry(name).or_default() += 1;
        if !ok {
            self.violations.push(format!("{name}: {}", what()));
        }
    }
}

/// What one hold's events say, summed over its blocks.
#[derive(Default)]
struct HoldFacts {
    held: usize,
    booked: usize,
    undone: usize,
    track: Option<HoldTrack>,
}

pub async fn run(args: AuditArgs) -> bool {
    let acks = read_acks(&args.out);
    let pool = sqlx::PgPool::connect(&args.database_url)
        .await
        .expect("the chaos database");
    let client = reqwest::Client::new();
    let mut f = Findings::default();

    // Quiet first: every hold expired and swept, the projector caught up with the store.
    let caught_up = wait_for_read_models(&pool, Duration::from_secs(90)).await;
    f.check("projector caught up", caught_up, || {
        "read models behind after 90 s".into()
    });

    // The order process finishes every paid order (books its seats or gives them back).
    let log = projections::EventLog::new(pool.clone());
    let mut settled = false;
    for _ in 0..60 {
        let events = log.read_all().await.expect("the event store");
        if !orders::any_unsettled(&events) {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    f.check("order process caught up", settled, || {
        "orders still paid and unsettled after 60 s".into()
    });
    let events = log.read_all().await.expect("the event store");
    let now = Utc::now();
    let mut holds: HashMap<String, HoldFacts> = HashMap::new();
    let mut blocks: BTreeMap<String, Vec<SeatBlockEvent>> = BTreeMap::new();
    for e in &events {
        let Ok(Some(stored)) = StoredEvent::decode(&e.aggregate_type, e.payload.get()) else {
            continue;
        };
        if let Some(hold_event) = stored.hold_event() {
            let change = hold_event.change();
            let facts = holds.entry(change.hold_id.to_string()).or_default();
            facts
                .track
                .get_or_insert_with(|| HoldTrack::new(change))
                .apply(hold_event);
            if let HoldEvent::Block(block_event) = hold_event {
                let n = change.seats.len();
                match block_event {
                    SeatBlockEvent::SeatHeld(_) => facts.held += n,
                    SeatBlockEvent::SeatBooked(_) => facts.booked += n,
                    SeatBlockEvent::BookingUndone(_) => facts.undone += n,
                    _ => {}
                }
            }
        }
        if let StoredEvent::Block(b) = stored {
            blocks.entry(e.aggregate_id.clone()).or_default().push(b);
        }
    }

    // Acknowledged operations are in the store.
    for (id, ack) in &acks.holds {
        let seats = ack["seats"].as_array().map_or(0, Vec::len);
        let facts = holds.get(id);
        f.check(
            "acked hold stored",
            facts.is_some_and(|h| h.held == seats),
            || format!("hold {id} ({seats} seats) is not in the store whole"),
        );
        if acks.booked.contains(id) {
            let ok = facts.is_some_and(|h| h.booked == seats && h.undone == 0);
            f.check("acked booking stored", ok, || {
                format!("booked hold {id} is not booked in every block")
            });
        }
        if acks.released.contains(id) {
            let ok = facts.is_some_and(|h| h.booked == h.undone);
            f.check("acked release kept", ok, || {
                format!("released hold {id} ended booked")
            });
        }
    }

    // No seat with two owners; nothing held past its expiry plus the sweep interval.
    let mut booked_by: HashMap<String, HashMap<String, u32>> = HashMap::new();
    for (block, history) in &blocks {
        let mut owner: HashMap<SeatId, (String, chrono::DateTime<Utc>, bool)> = HashMap::new();
        for e in history {
            let c = e.change();
            let hold = c.hold_id.to_string();
            match e {
                SeatBlockEvent::SeatHeld(_) => {
                    for s in &c.seats {
                        let taken = owner
                            .get(s)
                            .is_some_and(|(_, until, booked)| *booked || c.at < *until);
                        f.check("one owner per seat", !taken, || {
                            format!("block {block} seat {} held by {hold} while owned", s.0)
                        });
                        owner.insert(*s, (hold.clone(), c.expires_at, false));
                    }
                }
                SeatBlockEvent::SeatBooked(_) => {
                    for s in &c.seats {
                        let mine = owner.get(s).is_some_and(|(h, _, _)| *h == hold);
                        f.check("one owner per seat", mine, || {
                            format!("block {block} seat {} booked by {hold}, not its owner", s.0)
                        });
                        owner.insert(*s, (hold.clone(), c.expires_at, true));
                    }
                }
                SeatBlockEvent::HoldExtended { .. } => {
                    for s in &c.seats {
                        if let Some(o) = owner.get_mut(s).filter(|(h, _, _)| *h == hold) {
                            o.1 = c.expires_at;
                        }
                    }
                }
                _ => {
                    for s in &c.seats {
                        if owner.get(s).is_some_and(|(h, _, _)| *h == hold) {
                            owner.remove(s);
                        }
                    }
                }
            }
        }
        let late = now - chrono::Duration::from_std(args.sweep_slack).unwrap();
        for (seat, (hold, until, booked)) in &owner {
            f.check("nothing stuck", *booked || *until > late, || {
                format!(
                    "block {block} seat {} still held by {hold}, expired at {until}",
                    seat.0
                )
            });
        }
        for (hold, _, booked) in owner.values() {
            if *booked {
                let who = acks
                    .holds
                    .get(hold)
                    .and_then(|a| a["customer"].as_str())
                    .map(str::to_owned)
                    .unwrap_or_else(|| customer_of(&events, hold));
                let event = block.split('.').next().unwrap_or_default().to_owned();
                *booked_by
                    .entry(format!("{event}/{who}"))
                    .or_default()
                    .entry(hold.clone())
                    .or_default() += 1;
            }
        }
    }

    // Allowances count exactly the seats their customers have booked (every hold has expired).
    let allowance_ids: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = 'CustomerAllowance'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let store = booking::EventStore::new(pool.clone(), Default::default());
    let allowances = store
        .load::<CustomerAllowance>(&allowance_ids)
        .await
        .unwrap();
    for (id, allowance) in &allowances {
        let counted = allowance.seats_in_use(now);
        let booked: u32 = booked_by.get(id).map_or(0, |h| h.values().sum());
        f.check("allowance equals reality", counted == booked, || {
            format!("allowance {id} counts {counted} seats, {booked} are booked")
        });
    }

    // Read models equal a fresh replay, and the strong seat map agrees.
    for event in &acks.events {
        let replayed = replay_map(&blocks, event, now);
        let projected: Option<String> =
            sqlx::query_scalar("SELECT seats FROM rm_seat_map_view WHERE event_id = $1::uuid")
                .bind(event)
                .fetch_optional(&pool)
                .await
                .unwrap();
        f.check(
            "seat map = replay",
            projected.as_deref() == Some(replayed.as_str()),
            || format!("event {event}: projected {projected:?}, replay {replayed}"),
        );
        let strong = client
            .get(format!("{}/api/events/{event}/seats", args.url))
            .send()
            .await
            .ok();
        let strong: Option<Value> = match strong {
            Some(r) => r.json().await.ok(),
            None => None,
        };
        let strong = strong.and_then(|v| v["seats"].as_str().map(str::to_owned));
        f.check(
            "API seat map = replay",
            strong.as_deref() == Some(replayed.as_str()),
            || format!("event {event}: API {strong:?}, replay {replayed}"),
        );
    }
    let rows: Vec<(uuid::Uuid, String)> = sqlx::query_as("SELECT hold_id, status FROM rm_holds")
        .fetch_all(&pool)
        .await
        .unwrap();
    for (hold, status) in rows {
        let replayed = holds
            .get(&hold.to_string())
            .and_then(|h| h.track.as_ref())
            .map(|t| t.status);
        let projected = HoldStatus::try_from(status).ok();
        f.check("hold status = replay", projected == replayed, || {
            format!("hold {hold}: projected {projected:?}, replay {replayed:?}")
        });
    }

    // Orders: money and seats agree.
    let order_statuses = orders::check(&mut f, &events, &holds, &acks, now);

    // ClickHouse has every event exactly once.
    if let Some(url) = &args.clickhouse_url {
        let stored = events.len() as u64;
        let (rows, distinct) = clickhouse_counts(url, &args.clickhouse_database, stored).await;
        f.check(
            "ClickHouse exactly once",
            rows == stored && distinct == stored,
            || format!("store {stored} events; ClickHouse {rows} rows, {distinct} distinct"),
        );
    }

    let bad = |names: &[&str]| {
        f.violations
            .iter()
            .filter(|v| names.iter().any(|n| v.starts_with(&format!("{n}:"))))
            .count()
    };
    let acked = acks.holds.len()
        + acks.booked.len()
        + acks.released.len()
        + acks.orders.len()
        + acks.cancelled.len();
    println!("| operations acknowledged | lost | double-sold | stuck | other violations |");
    println!("|---|---|---|---|---|");
    let lost = bad(&[
        "acked hold stored",
        "acked booking stored",
        "acked release kept",
        "acked order stored",
        "acked cancel kept",
    ]);
    let double = bad(&["one owner per seat", "charged once"]);
    let stuck = bad(&["nothing stuck"]);
    println!(
        "| {acked} | {lost} | {double} | {stuck} | {} |\n",
        f.violations.len() - lost - double - stuck
    );
    println!("| check | times | violations |\n|---|---|---|");
    for (name, times) in &f.checks {
        let bad = f
            .violations
            .iter()
            .filter(|v| v.starts_with(&format!("{name}:")))
            .count();
        println!("| {name} | {times} | {bad} |");
    }
    println!(
        "\nacknowledged: {} holds, {} complimentary bookings, {} releases, {} orders, {} \
         cancellations ({acked} operations) over {} events; {} stored events",
        acks.holds.len(),
        acks.booked.len(),
        acks.released.len(),
        acks.orders.len(),
        acks.cancelled.len(),
        acks.events.len(),
        events.len()
    );
    let mut statuses: Vec<_> = order_statuses.into_iter().collect();
    statuses.sort();
    let statuses: Vec<String> = statuses.iter().map(|(s, n)| format!("{n} {s}")).collect();
    println!("\norders at the end: {}", statuses.join(", "));
    for v in f.violations.iter().take(20) {
        println!("VIOLATION {v}");
    }
    f.violations.is_empty()
}

fn customer_of(events: &[projections::RecordedEvent], hold: &str) -> String {
    events
        .iter()
        .find_map(|e| {
            let stored = StoredEvent::decode(&e.aggregate_type, e.payload.get()).ok()??;
            let c = stored.hold_change()?;
            (c.hold_id.to_string() == hold).then(|| c.customer_id.to_string())
        })
        .unwrap_or_default()
}

/// The seat map of `event` as a fresh replay of its blocks says it is at `now`.
fn replay_map(
    blocks: &BTreeMap<String, Vec<SeatBlockEvent>>,
    event: &str,
    now: chrono::DateTime<Utc>,
) -> String {
    let seats = (crate::load::ROWS * crate::load::COLS) as usize;
    let mut map = vec![SeatStatus::Available.code(); seats];
    for history in blocks
        .range(format!("{event}.")..format!("{event}/"))
        .map(|(_, h)| h)
    {
        let mut state = SeatBlock::default();
        for e in history {
            cqrs_es::Aggregate::apply(&mut state, e.clone());
        }
        for (seat, code) in map.iter_mut().enumerate() {
            let status = state.seat_status(SeatId(seat as u32), now);
            if status != SeatStatus::Available {
                *code = status.code();
            }
        }
    }
    String::from_utf8(map).unwrap()
}

/// Waits until the read models' checkpoint has passed every stored event.
async fn wait_for_read_models(pool: &sqlx::PgPool, within: Duration) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < within {
        let behind: Option<bool> = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM events e, projection_checkpoints c
                             WHERE c.name = 'read_models'
                               AND (e.transaction_id::text::bigint, e.position)
                                   > (c.transaction_id, c.position))",
        )
        .fetch_one(pool)
        .await
        .ok();
        if behind == Some(false) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

/// (rows, distinct events) in ClickHouse, waiting up to a minute for the ingester to catch up.
async fn clickhouse_counts(url: &str, database: &str, expected: u64) -> (u64, u64) {
    // ClickHouse 18.16 knows RowBinary, not the typed variant the crate checks rows with.
    let client = clickhouse::Client::default()
        .with_url(url)
        .with_database(database)
        .with_validation(false);
    let mut last = (0, 0);
    for _ in 0..120 {
        let counted = client
            .query(
                "SELECT count(), uniqExact(aggregate_type, stream_id, sequence)
                   FROM domain_events FINAL",
            )
            .fetch_one::<(u64, u64)>()
            .await;
        match counted {
            Ok(counts) => {
                last = counts;
                if counts.0 >= expected {
                    return counts;
                }
            }
            Err(e) => eprintln!("ClickHouse not countable yet: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    last
}
