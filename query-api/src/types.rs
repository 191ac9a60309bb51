//! The GraphQL object types, built from the read models (queries) or from the command service's
//! views (mutation results). Lists resolve their children through DataLoaders (see `loaders`).

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, Enum, Object, Result, SimpleObject};
use booking::views::{EventView, HoldView};
use chrono::{DateTime, Utc};
use domain::{KnownEvent, SeatId};
use projections::{HoldRecord, SeatMap};
use uuid::Uuid;

use crate::errors::{not_found, read_failed};
use crate::loaders::{EventLoader, SeatMapLoader};
pub use crate::seats::{Seat, SeatChange, SeatStatus};

/// A ticketed event (the show), with its layout and live availability.
#[derive(Clone)]
pub struct Event(pub Arc<KnownEvent>);

impl std::ops::Deref for Event {
    type Target = KnownEvent;
    fn deref(&self) -> &KnownEvent {
        &self.0
    }
}

impl Event {
    fn view(&self) -> EventView {
        EventView::of(&self.0)
    }

    async fn seat_map_data(&self, ctx: &Context<'_>) -> Result<Option<SeatMap>> {
        ctx.data_unchecked::<DataLoader<SeatMapLoader>>()
            .load_one(self.definition.event_id.0)
            .await
            .map_err(read_failed)
    }
}

#[Object]
impl Event {
    async fn id(&self) -> Uuid {
        self.definition.event_id.0
    }
    async fn name(&self) -> &str {
        &self.definition.name
    }
    async fn venue(&self) -> Option<&str> {
        self.definition.venue.as_deref()
    }
    async fn starts_at(&self) -> Option<DateTime<Utc>> {
        self.definition.starts_at
    }
    /// ISO 4217 currency of every price.
    async fn currency(&self) -> &str {
        &self.definition.currency
    }
    async fn hold_seconds(&self) -> u32 {
        self.definition.hold_seconds
    }
    async fn max_seats_per_customer(&self) -> u32 {
        self.definition.max_seats_per_customer
    }
    async fn seat_count(&self) -> u32 {
        self.layout.seat_count()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.definition.created_at
    }
    /// Whether the caller manages this event (its organizer, an organizer of every event, or an
    /// admin): false without a token.
    async fn manageable(&self, ctx: &Context<'_>) -> bool {
        crate::auth::manager(ctx, &self.definition).is_ok()
    }
    /// Where the best available seats are (`holdSeats(quantity: ...)`), as the organizer set it
    /// or by default the centre of the first section's front row.
    async fn focal_point(&self) -> FocalPoint {
        let view = booking::views::FocalPointView::of(&self.0);
        FocalPoint {
            section: view.section,
            row_index: view.row_index,
            across_percent: view.across_percent,
        }
    }
    async fn price_tiers(&self) -> Vec<PriceTier> {
        self.definition
            .layout
            .price_tiers
            .iter()
            .map(|t| PriceTier {
                name: t.name.clone(),
                price_cents: t.price_cents,
            })
            .collect()
    }
    async fn sections(&self) -> Vec<Section> {
        let tiers = &self.definition.layout.price_tiers;
        self.view()
            .sections
            .into_iter()
            .map(|s| Section {
                price_cents: tiers
                    .iter()
                    .find(|t| t.name == s.price_tier)
                    .map_or(0, |t| t.price_cents),
                name: s.name,
                price_tier: s.price_tier,
                rows: s
                    .rows
                    .into_iter()
                    .map(|r| Row {
                        label: r.label,
                        seats: r.seats,
                        first_seat_id: r.first_seat_id,
                    })
                    .collect(),
            })
            .collect()
    }
    /// Seats available, held and booked right now (null until the event reaches the read model).
    async fn availability(&self, ctx: &Context<'_>) -> Result<Option<Availability>> {
        Ok(self
            .seat_map_data(ctx)
            .await?
            .map(|m| Availability::of(&m, 0..m.seats.len())))
    }
    /// Availability per section.
    async fn availability_by_section(&self, ctx: &Context<'_>) -> Result<Vec<GroupAvailability>> {
        Ok(match self.seat_map_data(ctx).await? {
            Some(m) => by_section(&self.view(), &m),
            None => Vec::new(),
        })
    }
    /// Availability per price tier.
    async fn availability_by_price_tier(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<GroupAvailability>> {
        Ok(match self.seat_map_data(ctx).await? {
            Some(m) => by_price_tier(&self.view(), &m),
            None => Vec::new(),
        })
    }
    /// The event's holds and bookings with their customers, for its organizer and admins, in hold id order (cursor pagination, 100 per page at most).
    /// With `live: true`, only those keeping their seats now: booked, or held and not expired.
    #[graphql(complexity = "(first.clamp(1, 100) as usize) * child_complexity")]
    async fn holds(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
        live: Option<bool>,
    ) -> Result<async_graphql::connection::Connection<String, Hold>> {
        crate::auth::manager(ctx, &self.definition)?;
        let live = live.unwrap_or(false);
        use async_graphql::connection::{Connection, Edge};
        if !(0..=100).contains(&first) {
            return Err(crate::errors::coded(
                "invalid_page_size",
                "first must be between 0 and 100",
            ));
        }
        let after = match after {
            None => None,
            Some(c) => Some(c.parse::<Uuid>().map_err(|_| {
                crate::errors::coded("invalid_cursor", "after is not a cursor from this API")
            })?),
        };
        let (page, more) = ctx
            .data_unchecked::<projections::ReadModels>()
            .event_holds(self.definition.event_id.0, after, i64::from(first), live)
            .await
            .map_err(|e| read_failed(Arc::new(e)))?;
        let now = Utc::now();
        let mut connection = Connection::new(after.is_some(), more);
        connection.edges.extend(
            page.iter()
                .map(|r| Edge::new(r.hold_id.to_string(), Hold::from_record(r, now))),
        );
        Ok(connection)
    }

    /// The event's orders, for its organizer and admins, in order id order (cursor pagination,
    /// 100 per page at most), as projected.
    #[graphql(complexity = "(first.clamp(1, 100) as usize) * child_complexity")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> Result<async_graphql::connection::Connection<String, crate::orders::Order>> {
        crate::orders::event_orders(ctx, &self.0, first, after).await
    }

    /// The seat map (same as the root `seatMap` field).
    async fn seat_map(&self, ctx: &Context<'_>) -> Result<Option<SeatMapObject>> {
        Ok(self.seat_map_data(ctx).await?.map(|map| SeatMapObject {
            map,
            view: self.view(),
        }))
    }
}

#[derive(SimpleObject)]
pub struct PriceTier {
    pub name: String,
    pub price_cents: u64,
}

#[derive(SimpleObject)]
pub struct Section {
    pub name: String,
    pub price_tier: String,
    pub price_cents: u64,
    pub rows: Vec<Row>,
}

/// The point best-available seats are closest to: a section, a row index from its front (0 = the
/// first row listed) and a position across the row (0-100 %, 50 = the centre).
#[derive(SimpleObject)]
pub struct FocalPoint {
    pub section: String,
    pub row_index: u32,
    pub across_percent: u32,
}

/// A row: seats `1..=seats`, whose seat ids are `firstSeatId..firstSeatId + seats`.
#[derive(SimpleObject)]
pub struct Row {
    pub label: String,
    pub seats: u32,
    pub first_seat_id: u32,
}

#[derive(SimpleObject, Clone, Copy)]
pub struct Availability {
    pub available: u32,
    pub held: u32,
    pub booked: u32,
}

impl Availability {
    fn of(map: &SeatMap, range: std::ops::Range<usize>) -> Self {
        let (available, held, booked) = map.counts(range);
        Self {
            available,
            held,
            booked,
        }
    }
}

/// Availability of a section or a price tier.
#[derive(SimpleObject)]
pub struct GroupAvailability {
    pub name: String,
    pub available: u32,
    pub held: u32,
    pub booked: u32,
}

fn section_ranges(view: &EventView) -> impl Iterator<Item = (&str, &str, std::ops::Range<usize>)> {
    view.sections.iter().map(|s| {
        let start = s.rows.first().map_or(0, |r| r.first_seat_id as usize);
        let end = s
            .rows
            .last()
            .map_or(start, |r| (r.first_seat_id + r.seats) as usize);
        (s.name.as_str(), s.price_tier.as_str(), start..end)
    })
}

fn by_section(view: &EventView, map: &SeatMap) -> Vec<GroupAvailability> {
    section_ranges(view)
        .map(|(name, _, range)| {
            let a = Availability::of(map, range);
            GroupAvailability {
                name: name.to_owned(),
                available: a.available,
                held: a.held,
                booked: a.booked,
            }
        })
        .collect()
}

fn by_price_tier(view: &EventView, map: &SeatMap) -> Vec<GroupAvailability> {
    view.price_tiers
        .iter()
        .map(|tier| {
            let mut g = GroupAvailability {
                name: tier.name.clone(),
                available: 0,
                held: 0,
                booked: 0,
            };
            for (_, section_tier, range) in section_ranges(view) {
                if section_tier == tier.name {
                    let a = Availability::of(map, range);
                    g.available += a.available;
                    g.held += a.held;
                    g.booked += a.booked;
                }
            }
            g
        })
        .collect()
}

/// The seat map in its compact form: `seats` has one character per seat id, in id order
/// (`A` available, `H` held, `B` booked). 20,000 seats are 20,000 bytes.
pub struct SeatMapObject {
    pub map: SeatMap,
    pub view: EventView,
}

#[Object(name = "SeatMap")]
impl SeatMapObject {
    async fn event_id(&self) -> Uuid {
        self.map.event_id
    }
    async fn seat_count(&self) -> usize {
        self.map.seats.len()
    }
    /// Always `"A=available,H=held,B=booked"`.
    async fn encoding(&self) -> &str {
        "A=available,H=held,B=booked"
    }
    async fn seats(&self) -> String {
        String::from_utf8_lossy(&self.map.seats).into_owned()
    }
    /// Grows with every change; compare with `seatUpdates` versions.
    async fn version(&self) -> i64 {
        self.map.version
    }
    async fn available(&self) -> u32 {
        self.map.counts(0..self.map.seats.len()).0
    }
    async fn held(&self) -> u32 {
        self.map.counts(0..self.map.seats.len()).1
    }
    async fn booked(&self) -> u32 {
        self.map.counts(0..self.map.seats.len()).2
    }
    async fn sections(&self) -> Vec<GroupAvailability> {
        by_section(&self.view, &self.map)
    }
    async fn price_tiers(&self) -> Vec<GroupAvailability> {
        by_price_tier(&self.view, &self.map)
    }
}

// A hold's status: the domain derives it (`domain::hold`); GraphQL only names it.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "domain::HoldStatus")]
pub enum HoldStatus {
    /// Being placed (or interrupted; it turns FAILED at its expiry).
    Pending,
    Held,
    Booked,
    Released,
    Expired,
    /// Never took effect: some seats were not available and what was taken was given back.
    Failed,
}

/// A hold (and, once booked, the booking).
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Hold {
    pub id: Uuid,
    pub event_id: Uuid,
    pub customer_id: String,
    pub status: HoldStatus,
    pub expires_at: DateTime<Utc>,
    #[graphql(skip)]
    pub seat_ids: Vec<u32>,
}

impl Hold {
    /// From the read model, with lazy expiry applied as of `now`.
    pub fn from_record(r: &HoldRecord, now: DateTime<Utc>) -> Self {
        Self {
            id: r.hold_id,
            event_id: r.event_id,
            customer_id: r.customer_id.clone(),
            status: r.status_at(now).into(),
            expires_at: r.expires_at,
            seat_ids: r.seats.iter().map(|s| *s as u32).collect(),
        }
    }

    pub fn from_view(v: &HoldView) -> Self {
        Self {
            id: v.hold_id,
            event_id: v.event_id,
            customer_id: v.customer_id.clone(),
            status: v.status.into(),
            expires_at: v.expires_at,
            seat_ids: v.seats.iter().map(|s| s.seat_id).collect(),
        }
    }
}

#[ComplexObject]
impl Hold {
    /// The held (or booked) seats, with labels and prices.
    async fn seats(&self, ctx: &Context<'_>) -> Result<Vec<Seat>> {
        let event = self.event(ctx).await?;
        Ok(self
            .seat_ids
            .iter()
            .filter_map(|id| event.layout.label(SeatId(*id)))
            .map(|l| Seat::from(booking::views::SeatView::from(l)))
            .collect())
    }
    /// Sum of the seats' prices, in the event's currency.
    async fn total_cents(&self, ctx: &Context<'_>) -> Result<u64> {
        domain::VenueLayout::total_cents(self.seats(ctx).await?.iter().map(|s| s.price_cents))
            .ok_or_else(|| "the total is out of range".into())
    }
    async fn event(&self, ctx: &Context<'_>) -> Result<Event> {
        ctx.data_unchecked::<DataLoader<EventLoader>>()
            .load_one(self.event_id)
            .await
            .map_err(read_failed)?
            .map(Event)
            .ok_or_else(|| not_found("event_not_found", "the hold's event is not projected yet"))
    }
}
