//! The seat map read model: per event a version and the counts (`rm_seat_maps`), and the map
//! itself in chunks of [`CHUNK`] seats (`rm_seat_map_chunks`; `rm_seat_map_view` assembles it).
//!
//! Policy: a projected batch reads and rewrites only the chunks its events touched (a hold of a
//! few seats rewrites one 1,000-character row, not the whole map of a 100,000-seat event), locks
//! the event's row first (so two projectors serialize per event, never deadlock on chunks), keeps
//! the counts by the seats' old and new status, and takes one new version per event per batch.

use std::collections::{BTreeMap, HashMap};

use domain::{SeatBlockEvent, StoredEvent};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::records::{SeatUpdate, AVAILABLE, BOOKED, HELD};
use crate::runner::ProjectionError;

/// Seats per chunk row.
pub const CHUNK: u32 = 1_000;

/// A new event's map: every seat available.
pub(crate) async fn create_seat_map(
    tx: &mut PgConnection,
    event_id: Uuid,
    seat_count: u32,
) -> Result<(), ProjectionError> {
    let inserted = sqlx::query(
        "INSERT INTO rm_seat_maps (event_id, version, available, held, booked)
         VALUES ($1, nextval('read_model_version'), $2, 0, 0) ON CONFLICT DO NOTHING",
    )
    .bind(event_id)
    .bind(seat_count as i32)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 || seat_count == 0 {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO rm_seat_map_chunks (event_id, chunk, seats)
         SELECT $1, c, repeat('A', least($3, $2 - c * $3))
           FROM generate_series(0, ($2 - 1) / $3) AS c",
    )
    .bind(event_id)
    .bind(seat_count as i32)
    .bind(CHUNK as i32)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The seats' status after `e`, or `None` when it does not change them (an extension).
fn seat_status(e: &SeatBlockEvent) -> Option<u8> {
    match e {
        SeatBlockEvent::SeatHeld(_) => Some(HELD),
        SeatBlockEvent::SeatBooked(_) => Some(BOOKED),
        SeatBlockEvent::HoldExtended { .. } => None,
        SeatBlockEvent::SeatReleased(_)
        | SeatBlockEvent::HoldExpired(_)
        | SeatBlockEvent::BookingUndone(_) => Some(AVAILABLE),
    }
}

/// Applies the seat changes of `facts`, chunk by chunk; one update per event changed.
pub(crate) async fn apply_seats(
    tx: &mut PgConnection,
    facts: &[StoredEvent],
) -> Result<Vec<SeatUpdate>, ProjectionError> {
    let mut changes: BTreeMap<Uuid, Vec<(u32, char)>> = BTreeMap::new();
    for fact in facts {
        if let StoredEvent::Block(e) = fact {
            if let Some(status) = seat_status(e) {
                let list = changes.entry(e.change().event_id.0).or_default();
                list.extend(e.change().seats.iter().map(|s| (s.0, status as char)));
            }
        }
    }
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = changes.keys().copied().collect();
    let maps: Vec<(Uuid, i64, i32, i32, i32)> = sqlx::query_as(
        "SELECT event_id, version, available, held, booked FROM rm_seat_maps
          WHERE event_id = ANY($1) ORDER BY event_id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let (mut chunk_events, mut chunk_ids) = (Vec::new(), Vec::new());
    for (event_id, ..) in &maps {
        let mut touched: Vec<i32> = changes[event_id]
            .iter()
            .map(|(seat, _)| (seat / CHUNK) as i32)
            .collect();
        touched.sort_unstable();
        touched.dedup();
        chunk_ids.extend(touched.iter().copied());
        chunk_events.extend(touched.iter().map(|_| *event_id));
    }
    let rows: Vec<(Uuid, i32, String)> = sqlx::query_as(
        "SELECT c.event_id, c.chunk, c.seats
           FROM unnest($1::uuid[], $2::int[]) AS k(e, n)
           JOIN rm_seat_map_chunks c ON c.event_id = k.e AND c.chunk = k.n",
    )
    .bind(&chunk_events)
    .bind(&chunk_ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut chunks: HashMap<(Uuid, i32), Vec<u8>> = rows
        .into_iter()
        .map(|(event_id, chunk, seats)| ((event_id, chunk), seats.into_bytes()))
        .collect();
    let mut updates = Vec::with_capacity(maps.len());
    for (event_id, from_version, available, held, booked) in maps {
        let list = changes.remove(&event_id).unwrap_or_default();
        let mut counts = [available, held, booked];
        let slot = |code: u8| match code {
            HELD => 1,
            BOOKED => 2,
            _ => 0,
        };
        for (seat, status) in &list {
            let key = (event_id, (seat / CHUNK) as i32);
            let Some(s) = chunks
                .get_mut(&key)
                .and_then(|c| c.get_mut((seat % CHUNK) as usize))
            else {
                continue;
            };
            counts[slot(*s)] -= 1;
            *s = *status as u8;
            counts[slot(*s)] += 1;
        }
        updates.push(SeatUpdate {
            event_id,
            from_version,
            version: 0,
            changes: list,
            counts: (counts[0] as u32, counts[1] as u32, counts[2] as u32),
        });
    }
    let (mut e, mut n, mut s) = (Vec::new(), Vec::new(), Vec::new());
    for ((event_id, chunk), seats) in chunks {
        e.push(event_id);
        n.push(chunk);
        s.push(String::from_utf8(seats).expect("seat maps hold ASCII only"));
    }
    sqlx::query(
        "UPDATE rm_seat_map_chunks c SET seats = u.s
           FROM unnest($1::uuid[], $2::int[], $3::text[]) AS u(e, n, s)
          WHERE c.event_id = u.e AND c.chunk = u.n",
    )
    .bind(&e)
    .bind(&n)
    .bind(&s)
    .execute(&mut *tx)
    .await?;
    let ids: Vec<Uuid> = updates.iter().map(|u| u.event_id).collect();
    let [a, h, b] = [0, 1, 2].map(|i| {
        updates
            .iter()
            .map(|u| [u.counts.0, u.counts.1, u.counts.2][i] as i32)
            .collect::<Vec<i32>>()
    });
    let versions: Vec<(Uuid, i64)> = sqlx::query_as(
        "UPDATE rm_seat_maps m
            SET version = nextval('read_model_version'), available = u.a, held = u.h, booked = u.b
           FROM unnest($1::uuid[], $2::int[], $3::int[], $4::int[]) AS u(e, a, h, b)
          WHERE m.event_id = u.e
         RETURNING m.event_id, m.version",
    )
    .bind(&ids)
    .bind(&a)
    .bind(&h)
    .bind(&b)
    .fetch_all(&mut *tx)
    .await?;
    let versions: HashMap<Uuid, i64> = versions.into_iter().collect();
    for update in &mut updates {
        update.version = versions[&update.event_id];
    }
    for (event_id, _) in changes {
        tracing::warn!(%event_id, "seat events for an event the read model does not know; skipped");
    }
    Ok(updates)
}
