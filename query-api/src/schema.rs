//! The GraphQL schema: queries over the read models, mutations through the application core's
//! [`BookingCommands`] (as REST), and live subscriptions fed by Redis pub/sub.
//!
//! Policy:
//! - Queries read the projected read models (cache first). They are eventually consistent, usually
//!   within milliseconds; a hold's status honours its expiry even before `HoldExpired` is projected.
//! - Mutations return the command side's own answer, so a client sees its write at once.
//! - With `idempotencyKey`, the new event's or hold's id is derived from the key (as REST does),
//!   so a retried mutation lands on the same aggregate and changes nothing.
//! - Depth and complexity are limited ([`MAX_DEPTH`], [`MAX_COMPLEXITY`]).

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, InputObject, Object, Result, Schema, Subscription};
use axum::http::HeaderMap;
use booking::validation::{
    self, seat_refs, CreateEventRequest, LayoutRequest, PriceTierRequest, RowRequest,
    SectionRequest,
};
use booking::{BookingCommands, RequestContext};
use chrono::Utc;
use domain::{EventCatalog, EventId, HoldId};
use futures::{Stream, StreamExt};
use projections::{HoldRecord, ReadModels, SeatUpdate};
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::analytics::{AnalyticsQuery, AnalyticsSources};
use crate::errors::{coded, from_command, not_found, read_failed};
use crate::live::LiveUpdates;
use crate::loaders::{EventLoader, SeatMapLoader};
use crate::types::{Event, Hold, HoldStatus, SeatChange, SeatMapObject, SeatStatus};

pub const MAX_DEPTH: usize = 10;
pub const MAX_COMPLEXITY: usize = 2_000;
const MAX_PAGE: usize = 100;

pub type SeatGridSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Per-request facts the HTTP layer hands to resolvers.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub correlation_id: String,
    pub headers: HeaderMap,
}

/// The schema over the core's `commands` and the projected `reads`; ticketed events are kept in
/// `catalog` (the one the core keeps, so each layout is indexed once per process).
pub fn build_schema(
    reads: ReadModels,
    commands: Arc<dyn BookingCommands>,
    catalog: Arc<EventCatalog>,
    live: Option<LiveUpdates>,
    analytics: Option<AnalyticsSources>,
) -> SeatGridSchema {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(DataLoader::new(SeatMapLoader(reads.clone()), tokio::spawn))
        .data(DataLoader::new(
            EventLoader::new(reads.clone(), catalog),
            tokio::spawn,
        ))
        .data(reads)
        .data(commands)
        .data(live)
        .data(analytics)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

/// The schema in GraphQL's schema definition language (what clients may rely on).
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .finish()
        .sdl()
}

fn reads<'a>(ctx: &Context<'a>) -> &'a ReadModels {
    ctx.data_unchecked::<ReadModels>()
}

fn events<'a>(ctx: &Context<'a>) -> &'a DataLoader<EventLoader> {
    ctx.data_unchecked::<DataLoader<EventLoader>>()
}

async fn load_event(ctx: &Context<'_>, id: Uuid) -> Result<Option<Event>> {
    Ok(events(ctx)
        .load_one(id)
        .await
        .map_err(read_failed)?
        .map(Event))
}

pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// Ticketed events, oldest first (Relay-style cursor pagination; at most 100 per page).
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, Event>> {
        if first < 0 || first as usize > MAX_PAGE {
            return Err(coded(
                "invalid_page_size",
                format!("first must be between 0 and {MAX_PAGE}"),
            ));
        }
        let after = match after {
            None => None,
            Some(c) => Some(
                c.parse::<i64>()
                    .map_err(|_| coded("invalid_cursor", "after is not a cursor from this API"))?,
            ),
        };
        let (page, more) = reads(ctx)
            .events_page(after, first as i64)
            .await
            .map_err(|e| read_failed(Arc::new(e)))?;
        let mut connection = Connection::new(after.is_some(), more);
        for record in page {
            let cursor = record.list_order.to_string();
            if let Some(event) = events(ctx).loader().event(record.definition) {
                connection.edges.push(Edge::new(cursor, Event(event)));
            }
        }
        Ok(connection)
    }

    /// One ticketed event, or null if there is none with this id.
    async fn event(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<Event>> {
        load_event(ctx, id).await
    }

    /// An event's seat map in compact form, or null if there is no such event.
    async fn seat_map(&self, ctx: &Context<'_>, event_id: Uuid) -> Result<Option<SeatMapObject>> {
        let Some(event) = load_event(ctx, event_id).await? else {
            return Ok(None);
        };
        let map = ctx
            .data_unchecked::<DataLoader<SeatMapLoader>>()
            .load_one(event_id)
            .await
            .map_err(read_failed)?;
        Ok(map.map(|map| SeatMapObject {
            map,
            view: booking::views::EventView::of(&event),
        }))
    }

    /// A hold (or booking), or null if there is none with this id.
    async fn hold(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<Hold>> {
        let hold = reads(ctx)
            .hold(id)
            .await
            .map_err(|e| read_failed(Arc::new(e)))?;
        Ok(hold.map(|h| Hold::from_record(&h, Utc::now())))
    }

    /// Organizer reports from ClickHouse (sales velocity, conversion, demand, revenue, ...).
    async fn analytics(&self) -> AnalyticsQuery {
        AnalyticsQuery
    }

    /// A customer's holds and bookings.
    async fn customer(&self, id: String) -> Result<Customer> {
        let id = validation::customer_id(Some(&id), None).map_err(from_command)?;
        Ok(Customer { id: id.to_string() })
    }
}

/// A customer, as seen through their holds and bookings.
pub struct Customer {
    id: String,
}

impl Customer {
    async fn records(&self, ctx: &Context<'_>, event_id: Option<Uuid>) -> Result<Vec<HoldRecord>> {
        reads(ctx)
            .customer_holds(&self.id, event_id)
            .await
            .map_err(|e| read_failed(Arc::new(e)))
    }
}

#[Object]
impl Customer {
    async fn id(&self) -> &str {
        &self.id
    }
    /// Every hold, newest first, whatever became of it (optionally for one event).
    async fn holds(&self, ctx: &Context<'_>, event_id: Option<Uuid>) -> Result<Vec<Hold>> {
        let now = Utc::now();
        Ok(self
            .records(ctx, event_id)
            .await?
            .iter()
            .map(|r| Hold::from_record(r, now))
            .collect())
    }
    /// Booked holds only, newest first.
    async fn bookings(&self, ctx: &Context<'_>, event_id: Option<Uuid>) -> Result<Vec<Hold>> {
        let now = Utc::now();
        Ok(self
            .records(ctx, event_id)
            .await?
            .iter()
            .map(|r| Hold::from_record(r, now))
            .filter(|h| h.status == HoldStatus::Booked)
            .collect())
    }
}

#[derive(InputObject)]
pub struct CreateEventInput {
    pub name: String,
    pub venue: Option<String>,
    pub starts_at: Option<chrono::DateTime<Utc>>,
    /// ISO 4217; default EUR.
    pub currency: Option<String>,
    pub layout: LayoutInput,
    pub hold_seconds: Option<u32>,
    pub max_seats_per_customer: Option<u32>,
}

/// Either a grid (`rows`, `cols`, `priceCents`) or `priceTiers` with `sections`.
#[derive(InputObject)]
pub struct LayoutInput {
    pub rows: Option<u32>,
    pub cols: Option<u32>,
    pub price_cents: Option<u64>,
    pub price_tiers: Option<Vec<PriceTierInput>>,
    pub sections: Option<Vec<SectionInput>>,
}

#[derive(InputObject)]
pub struct PriceTierInput {
    pub name: String,
    pub price_cents: u64,
}

#[derive(InputObject)]
pub struct SectionInput {
    pub name: String,
    pub price_tier: String,
    pub rows: Vec<RowInput>,
}

#[derive(InputObject)]
pub struct RowInput {
    pub label: String,
    pub seats: u32,
}

/// A seat, by `seatId` or by `row` and `seat` labels (plus `section` when there are several).
#[derive(InputObject)]
pub struct SeatInput {
    pub seat_id: Option<u32>,
    pub section: Option<String>,
    pub row: Option<String>,
    pub seat: Option<String>,
}

impl SeatInput {
    fn into_core(self) -> validation::SeatInput {
        validation::SeatInput::Fields {
            seat_id: self.seat_id,
            section: self.section,
            row: self.row,
            seat: self.seat,
        }
    }
}

impl CreateEventInput {
    /// The same request REST takes, so both are validated alike.
    fn into_request(self) -> CreateEventRequest {
        let layout = self.layout;
        CreateEventRequest {
            name: self.name,
            venue: self.venue,
            starts_at: self.starts_at,
            currency: self.currency,
            rows: None,
            cols: None,
            price_cents: None,
            layout: Some(LayoutRequest {
                rows: layout.rows,
                cols: layout.cols,
                price_cents: layout.price_cents,
                price_tiers: layout.price_tiers.map(|tiers| {
                    tiers
                        .into_iter()
                        .map(|t| PriceTierRequest {
                            name: t.name,
                            price_cents: t.price_cents,
                        })
                        .collect()
                }),
                sections: layout.sections.map(|sections| {
                    sections
                        .into_iter()
                        .map(|s| SectionRequest {
                            name: s.name,
                            price_tier: s.price_tier,
                            rows: s
                                .rows
                                .into_iter()
                                .map(|r| RowRequest {
                                    label: r.label,
                                    seats: r.seats,
                                })
                                .collect(),
                        })
                        .collect()
                }),
            }),
            hold_seconds: self.hold_seconds,
            max_seats_per_customer: self.max_seats_per_customer,
        }
    }
}

fn request_context(ctx: &Context<'_>, mutation: &str, key: Option<&str>) -> RequestContext {
    let meta = ctx.data_opt::<RequestMeta>().cloned().unwrap_or_default();
    RequestContext {
        correlation_id: if meta.correlation_id.is_empty() {
            Uuid::new_v4().to_string()
        } else {
            meta.correlation_id
        },
        id_seed: key.map(|k| format!("graphql\n{mutation}\n{k}")),
    }
}

/// The customer from the `X-Customer-Id` header and/or the `customerId` argument.
fn caller(ctx: &Context<'_>, given: Option<&str>) -> Result<domain::CustomerId> {
    let header = ctx
        .data_opt::<RequestMeta>()
        .and_then(|m| m.headers.get("x-customer-id"))
        .map(|v| {
            v.to_str().map_err(|_| {
                from_command(booking::CommandError::InvalidCustomerId(
                    "X-Customer-Id is not text".into(),
                ))
            })
        })
        .transpose()?;
    validation::customer_id(header, given).map_err(from_command)
}

fn commands<'a>(ctx: &Context<'a>) -> &'a dyn BookingCommands {
    ctx.data_unchecked::<Arc<dyn BookingCommands>>().as_ref()
}

pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Creates a ticketed event (same rules as `POST /api/events`).
    async fn create_event(
        &self,
        ctx: &Context<'_>,
        input: CreateEventInput,
        idempotency_key: Option<String>,
    ) -> Result<Event> {
        let draft = input
            .into_request()
            .into_new_event()
            .map_err(from_command)?;
        let service = commands(ctx);
        let ctx_ = request_context(ctx, "createEvent", idempotency_key.as_deref());
        let view = service
            .create_event(draft, &ctx_)
            .await
            .map_err(from_command)?;
        let known = service
            .known_event(EventId(view.id))
            .await
            .map_err(from_command)?;
        Ok(Event(known))
    }

    /// Holds seats for a customer (same rules as `POST /api/events/{id}/holds`). The customer is
    /// `customerId` or the `X-Customer-Id` header.
    async fn hold_seats(
        &self,
        ctx: &Context<'_>,
        event_id: Uuid,
        customer_id: Option<String>,
        seats: Vec<SeatInput>,
        idempotency_key: Option<String>,
    ) -> Result<Hold> {
        let customer = caller(ctx, customer_id.as_deref())?;
        let refs = seat_refs(seats.into_iter().map(SeatInput::into_core).collect())
            .map_err(from_command)?;
        let ctx_ = request_context(ctx, "holdSeats", idempotency_key.as_deref());
        let view = commands(ctx)
            .hold_seats(EventId(event_id), customer, refs, &ctx_)
            .await
            .map_err(from_command)?;
        Ok(Hold::from_view(&view))
    }

    /// Books a held hold; booking twice is idempotent.
    async fn book_hold(
        &self,
        ctx: &Context<'_>,
        hold_id: Uuid,
        customer_id: Option<String>,
    ) -> Result<Hold> {
        let customer = caller(ctx, customer_id.as_deref())?;
        let view = commands(ctx)
            .book_hold(
                HoldId(hold_id),
                customer,
                &request_context(ctx, "bookHold", None),
            )
            .await
            .map_err(from_command)?;
        Ok(Hold::from_view(&view))
    }

    /// Releases a hold early; its seats are available at once.
    async fn release_hold(
        &self,
        ctx: &Context<'_>,
        hold_id: Uuid,
        customer_id: Option<String>,
    ) -> Result<Hold> {
        let customer = caller(ctx, customer_id.as_deref())?;
        let view = commands(ctx)
            .release_hold(
                HoldId(hold_id),
                customer,
                &request_context(ctx, "releaseHold", None),
            )
            .await
            .map_err(from_command)?;
        Ok(Hold::from_view(&view))
    }
}

fn live<'a>(ctx: &Context<'a>) -> Result<(&'a LiveUpdates, &'a projections::Cache)> {
    match (
        ctx.data_unchecked::<Option<LiveUpdates>>(),
        reads(ctx).cache(),
    ) {
        (Some(live), Some(cache)) => Ok((live, cache)),
        _ => Err(coded(
            "live_updates_unavailable",
            "live updates need Redis, which this server runs without",
        )),
    }
}

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Every seat status change of an event, as it is projected.
    async fn seat_updates(
        &self,
        ctx: &Context<'_>,
        event_id: Uuid,
    ) -> Result<impl Stream<Item = SeatChange>> {
        let (live, cache) = live(ctx)?;
        let rx = live.subscribe();
        if load_event(ctx, event_id).await?.is_none() {
            return Err(not_found(
                "event_not_found",
                format!("event {event_id} does not exist"),
            ));
        }
        let channel = cache.seat_channel(event_id);
        Ok(futures::stream::unfold(rx, move |mut rx| {
            let channel = channel.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok(msg) if msg.channel == channel => {
                            let Ok(update) = serde_json::from_str::<SeatUpdate>(&msg.payload)
                            else {
                                continue;
                            };
                            let changes: Vec<SeatChange> = update
                                .changes
                                .iter()
                                .map(|(seat, status)| SeatChange {
                                    event_id: update.event_id,
                                    seat_id: *seat,
                                    status: SeatStatus::from_code(*status),
                                    version: update.version,
                                })
                                .collect();
                            return Some((futures::stream::iter(changes), rx));
                        }
                        Ok(_) | Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        })
        .flatten())
    }

    /// A hold's status now and at every change, until it is booked, released, expired or failed.
    /// An expiry is pushed at the hold's `expiresAt`, without waiting for anything to be written.
    async fn hold(&self, ctx: &Context<'_>, id: Uuid) -> Result<impl Stream<Item = Hold>> {
        let (live, cache) = live(ctx)?;
        let rx = live.subscribe();
        // The command side is authoritative and never behind, so the first answer comes from it;
        // projected changes follow (older ones are ignored, see `HoldStatus::rank`).
        let first = Hold::from_view(&commands(ctx).hold(HoldId(id)).await.map_err(from_command)?);
        let channel = cache.hold_channel(id);
        struct State {
            rx: tokio::sync::broadcast::Receiver<Arc<crate::live::LiveMessage>>,
            next: Option<Hold>,
            last: Option<Hold>,
        }
        let state = State {
            rx,
            next: Some(first),
            last: None,
        };
        Ok(futures::stream::unfold(state, move |mut s| {
            let channel = channel.clone();
            async move {
                loop {
                    if let Some(hold) = s.next.take() {
                        let changed = s.last.as_ref().is_none_or(|l| {
                            let (was, now) = (
                                domain::HoldStatus::from(l.status),
                                domain::HoldStatus::from(hold.status),
                            );
                            was != now && now.rank() >= was.rank()
                        });
                        if changed {
                            s.last = Some(hold.clone());
                            return Some((hold, s));
                        }
                    }
                    let last = s.last.clone()?;
                    if domain::HoldStatus::from(last.status).is_final() {
                        return None;
                    }
                    let until_expiry = (last.expires_at - Utc::now()).to_std().unwrap_or_default();
                    tokio::select! {
                        got = s.rx.recv() => match got {
                            Ok(msg) if msg.channel == channel => {
                                if let Ok(r) = serde_json::from_str::<HoldRecord>(&msg.payload) {
                                    s.next = Some(Hold::from_record(&r, Utc::now()));
                                }
                            }
                            Ok(_) | Err(RecvError::Lagged(_)) => {}
                            Err(RecvError::Closed) => return None,
                        },
                        _ = tokio::time::sleep(until_expiry) => {
                            let mut expired = last.clone();
                            let at = Utc::now().max(last.expires_at);
                            expired.status = domain::HoldStatus::from(last.status)
                                .at(last.expires_at, at)
                                .into();
                            s.next = Some(expired);
                        }
                    }
                }
            }
        }))
    }
}
