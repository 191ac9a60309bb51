//! Every report agrees with the event store after a concurrent booking run.

use domain::stored::aggregate_type::SEAT_BLOCK;
use std::collections::{BTreeMap, HashMap, HashSet};

use analytics::reports::Reports;
use analytics::testing::server_url;
use booking::BookingCommands;
use domain::{EventId, SeatBlockEvent};
use projections::EventLog;

use crate::helpers::*;

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
