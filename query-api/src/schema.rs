//! The GraphQL schema: queries over the read models (here), mutations through the application
//! core's [`BookingCommands`] as REST ([`crate::mutations`]), and live subscriptions fed by Redis
//! pub/sub ([`crate::subscriptions`]).
//!
//! Policy:
//! - Queries read the projected read models (cache first). They are eventually consistent, usually
//!   within milliseconds. A hold past its expiry with no final status projected yet is answered
//!   by the core (it may have been booked at the last moment), so a booked hold never reads
//!   expired; an unbooked one reads expired at once, before `HoldExpired` is projected.
//! - Mutations return the command side's own answer, so a client sees its write at once.
//! - With `idempotencyKey`, the new event's or hold's id is derived from the key (as REST does),
//!   so a retried mutation lands on the same aggregate and changes nothing.
//! - Depth, complexity and aliases are limited ([`MAX_DEPTH`], [`MAX_COMPLEXITY`],
//!   [`MAX_ALIASES`]; see [`crate::limits`]).

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Object, Result, Schema};
use axum::http::HeaderMap;
use booking::{BookingCommands, CommandError};
use chrono::Utc;
use domain::{CustomerId, EventCatalog, HoldId};
use projections::{HoldRecord, ReadModels};
use uuid::Uuid;

use crate::analytics::{AnalyticsQuery, AnalyticsSources};
use crate::auth;
use crate::data::commands;
use crate::data::{events, load_event, reads};
use crate::errors::{coded, from_command, read_failed};
use crate::live::LiveUpdates;
use crate::loaders::{EventLoader, SeatMapLoader};
pub use crate::mutations::MutationRoot;
use crate::orders::Order;
pub use crate::subscriptions::SubscriptionRoot;
use crate::types::{Event, Hold, HoldStatus, SeatMapObject};

pub const MAX_DEPTH: usize = 10;
pub const MAX_COMPLEXITY: usize = 2_000;
pub use crate::limits::MAX_ALIASES;
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
        .limit_directives(10)
        .extension(crate::limits::AliasLimit)
        .finish()
}

/// The schema in GraphQL's schema definition language (what clients may rely on).
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .finish()
        .sdl()
}

pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// Ticketed events, oldest first (Relay-style cursor pagination; at most 100 per page).
    #[graphql(complexity = "(first.clamp(1, MAX_PAGE as i32) as usize) * child_complexity")]
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

    /// A hold (or booking), or null if there is none with this id. For its customer, and for its
    /// event's organizer and admins.
    async fn hold(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<Hold>> {
        let caller = auth::caller(ctx)?;
        let Some(hold) = reads(ctx)
            .hold(id)
            .await
            .map_err(|e| read_failed(Arc::new(e)))?
        else {
            return Ok(None);
        };
        if caller.customer.as_str() != hold.customer_id {
            let event = load_event(ctx, hold.event_id).await?;
            if !event.is_some_and(|e| caller.manages(&e.definition)) {
                return Err(from_command(CommandError::NotHoldOwner(HoldId(id))));
            }
        }
        let now = Utc::now();
        if hold.status_at(now) != hold.status {
            // Past its expiry with nothing final projected yet: it may have been booked at the
            // last moment, so the core (never behind) answers rather than lazy expiry, and a
            // booked hold never reads expired.
            let view = commands(ctx)
                .hold(HoldId(id), caller)
                .await
                .map_err(from_command)?;
            return Ok(Some(Hold::from_view(&view)));
        }
        Ok(Some(Hold::from_record(&hold, now)))
    }

    /// Organizer reports from ClickHouse (sales velocity, conversion, demand, revenue, ...).
    async fn analytics(&self) -> AnalyticsQuery {
        AnalyticsQuery
    }

    /// An order, for its customer or its event's organizer; answered by the core (never behind).
    async fn order(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<Order>> {
        let caller = auth::caller(ctx)?;
        match commands(ctx).order(domain::OrderId(id), caller).await {
            Ok(view) => Ok(Some(Order::from_view(&view))),
            Err(CommandError::OrderNotFound(_)) => Ok(None),
            Err(e) => Err(from_command(e)),
        }
    }

    /// A customer's holds and bookings: the caller's own (`id` may be left out), or anyone's for
    /// an admin.
    async fn customer(&self, ctx: &Context<'_>, id: Option<String>) -> Result<Customer> {
        let caller = auth::caller(ctx)?;
        let id = match id {
            None => caller.customer.clone(),
            Some(raw) => CustomerId::parse(&raw)
                .map_err(|e| from_command(CommandError::InvalidCustomerId(e.0)))?,
        };
        caller.require_customer(&id).map_err(from_command)?;
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
    /// Orders, newest first (at most 100; optionally for one event), each as the core has it now.
    async fn orders(&self, ctx: &Context<'_>, event_id: Option<Uuid>) -> Result<Vec<Order>> {
        let caller = auth::caller(ctx)?;
        let listed = reads(ctx)
            .customer_orders(&self.id, event_id, 100)
            .await
            .map_err(|e| read_failed(Arc::new(e)))?;
        let mut orders = Vec::with_capacity(listed.len());
        for record in listed {
            let view = commands(ctx)
                .order(domain::OrderId(record.order_id), caller)
                .await
                .map_err(from_command)?;
            orders.push(Order::from_view(&view));
        }
        Ok(orders)
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
