//! The `analytics` query field: the organizer reports from ClickHouse, and read-only ad-hoc SQL.
//!
//! Policy: each report is for the event's organizer and admins; ad-hoc SQL is for organizers
//! (over their own events' rows only, see [`analytics::Scope`]) and admins (every row).
//! Figures lag the sale by the ingester's batching (about a second).

use async_graphql::{Context, Json, Object, Result, SimpleObject};
use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use crate::auth;
use crate::data::{load_event, reads};
use crate::errors::{coded, from_command, not_found, read_failed};

/// What the analytics fields need; absent when the server runs without ClickHouse.
#[derive(Clone)]
pub struct AnalyticsSources {
    pub reports: analytics::Reports,
    pub adhoc: analytics::AdhocSql,
}

fn sources<'a>(ctx: &Context<'a>) -> Result<&'a AnalyticsSources> {
    ctx.data_unchecked::<Option<AnalyticsSources>>()
        .as_ref()
        .ok_or_else(|| {
            coded(
                "analytics_unavailable",
                "this server runs without ClickHouse",
            )
        })
}

/// The sources, for a caller who manages `event_id` (its organizer or an admin).
async fn managed<'a>(ctx: &Context<'a>, event_id: Uuid) -> Result<&'a AnalyticsSources> {
    let Some(event) = load_event(ctx, event_id).await? else {
        return Err(not_found(
            "event_not_found",
            format!("event {event_id} does not exist"),
        ));
    };
    auth::manager(ctx, &event.definition)?;
    sources(ctx)
}

fn failed(e: clickhouse::error::Error) -> async_graphql::Error {
    tracing::warn!(error = %e, "analytics query failed");
    coded(
        "analytics_unavailable",
        "ClickHouse did not answer; try again shortly",
    )
}

pub struct AnalyticsQuery;

#[derive(SimpleObject)]
pub struct MinuteSales {
    pub minute: DateTime<Utc>,
    pub seats_held: u64,
    pub seats_booked: u64,
}

#[derive(SimpleObject)]
pub struct Conversion {
    pub holds: u64,
    pub booked: u64,
    pub released: u64,
    pub expired: u64,
    pub failed: u64,
    pub seats_held: u64,
    pub seats_booked: u64,
    /// booked / holds (0 when there were no holds).
    pub conversion_rate: f64,
    pub expiry_rate: f64,
    pub release_rate: f64,
}

#[derive(SimpleObject)]
pub struct SellOut {
    pub capacity: u32,
    pub seats_booked: u64,
    pub sold_out: bool,
    pub first_hold_at: Option<DateTime<Utc>>,
    pub last_booking_at: Option<DateTime<Utc>>,
    /// From the first hold to the booking that took the last seat; null until sold out.
    pub seconds_to_sell_out: Option<f64>,
}

#[derive(SimpleObject)]
pub struct RowDemand {
    pub section: String,
    pub row: String,
    /// How many times seats of this row were held.
    pub seat_holds: u64,
    pub seats_booked: u64,
}

#[derive(SimpleObject)]
pub struct HotSeat {
    pub seat_id: u32,
    pub section: String,
    pub row: String,
    pub holds: u64,
}

#[derive(SimpleObject)]
pub struct TierRevenue {
    pub price_tier: String,
    pub seats_booked: u64,
    pub revenue_cents: u64,
}

#[derive(SimpleObject)]
pub struct CustomerSeats {
    pub customer_id: String,
    pub seats_booked: u64,
    pub seats_held: u64,
    pub holds: u64,
}

/// Orders and payments: how orders ended, money kept and given back, failures, time to pay.
#[derive(SimpleObject)]
pub struct OrderFigures {
    pub orders: u64,
    pub paid: u64,
    pub confirmed: u64,
    pub payment_failed: u64,
    pub expired: u64,
    pub cancelled: u64,
    pub refunded: u64,
    /// What confirmed orders that were not refunded paid.
    pub revenue_cents: u64,
    pub refunded_cents: u64,
    /// Failed payments among payments with an outcome (0 when none).
    pub payment_failure_rate: f64,
    /// From order placed to payment succeeded, in milliseconds (null when nothing was paid).
    pub time_to_pay_p50_ms: Option<i64>,
    pub time_to_pay_p95_ms: Option<i64>,
    /// From order placed to confirmed, in milliseconds (null when nothing was confirmed).
    pub time_to_confirm_p95_ms: Option<i64>,
}

fn at_ms(ms: i64) -> Option<DateTime<Utc>> {
    (ms > 0)
        .then(|| Utc.timestamp_millis_opt(ms).single())
        .flatten()
}

#[Object]
impl AnalyticsQuery {
    /// Seats held and booked per minute.
    async fn sales_velocity(&self, ctx: &Context<'_>, event_id: Uuid) -> Result<Vec<MinuteSales>> {
        let rows = managed(ctx, event_id)
            .await?
            .reports
            .velocity(event_id)
            .await
            .map_err(failed)?;
        Ok(rows
            .into_iter()
            .map(|r| MinuteSales {
                minute: Utc
                    .timestamp_opt(i64::from(r.minute), 0)
                    .single()
                    .unwrap_or_default(),
                seats_held: r.seats_held,
                seats_booked: r.seats_booked,
            })
            .collect())
    }

    /// How holds ended: booked, released, expired, failed.
    async fn conversion(&self, ctx: &Context<'_>, event_id: Uuid) -> Result<Conversion> {
        let r = managed(ctx, event_id)
            .await?
            .reports
            .conversion(event_id)
            .await
            .map_err(failed)?;
        Ok(Conversion {
            conversion_rate: r.conversion_rate(),
            expiry_rate: r.expiry_rate(),
            release_rate: r.release_rate(),
            holds: r.holds,
            booked: r.booked,
            released: r.released,
            expired: r.expired,
            failed: r.failed,
            seats_held: r.seats_held,
            seats_booked: r.seats_booked,
        })
    }

    /// Orders and payments: revenue from confirmed orders, refunds, payment failures, time to pay.
    async fn orders(&self, ctx: &Context<'_>, event_id: Uuid) -> Result<OrderFigures> {
        let r = managed(ctx, event_id)
            .await?
            .reports
            .orders(event_id)
            .await
            .map_err(failed)?;
        let paid = r.paid > 0;
        Ok(OrderFigures {
            payment_failure_rate: r.payment_failure_rate(),
            time_to_pay_p50_ms: paid.then_some(r.time_to_pay_p50_ms),
            time_to_pay_p95_ms: paid.then_some(r.time_to_pay_p95_ms),
            time_to_confirm_p95_ms: (r.confirmed > 0).then_some(r.time_to_confirm_p95_ms),
            orders: r.orders,
            paid: r.paid,
            confirmed: r.confirmed,
            payment_failed: r.payment_failed,
            expired: r.expired,
            cancelled: r.cancelled,
            refunded: r.refunded,
            revenue_cents: r.revenue_cents,
            refunded_cents: r.refunded_cents,
        })
    }

    async fn sell_out(&self, ctx: &Context<'_>, event_id: Uuid) -> Result<SellOut> {
        let r = managed(ctx, event_id)
            .await?
            .reports
            .sell_out(event_id)
            .await
            .map_err(failed)?;
        Ok(SellOut {
            sold_out: r.sold_out(),
            seconds_to_sell_out: r.seconds_to_sell_out(),
            first_hold_at: at_ms(r.first_hold_ms),
            last_booking_at: at_ms(r.last_booking_ms),
            capacity: r.capacity,
            seats_booked: r.seats_booked,
        })
    }

    /// Demand per section and row, most held first.
    async fn demand_heat(&self, ctx: &Context<'_>, event_id: Uuid) -> Result<Vec<RowDemand>> {
        let rows = managed(ctx, event_id)
            .await?
            .reports
            .heat(event_id)
            .await
            .map_err(failed)?;
        Ok(rows
            .into_iter()
            .map(|r| RowDemand {
                section: r.section,
                row: r.row,
                seat_holds: r.seat_holds,
                seats_booked: r.seats_booked,
            })
            .collect())
    }

    /// The most contested seats (held most often).
    async fn hot_seats(
        &self,
        ctx: &Context<'_>,
        event_id: Uuid,
        #[graphql(default = 10, validator(minimum = 1, maximum = 1000))] limit: u32,
    ) -> Result<Vec<HotSeat>> {
        let rows = managed(ctx, event_id)
            .await?
            .reports
            .hot_seats(event_id, limit)
            .await
            .map_err(failed)?;
        Ok(rows
            .into_iter()
            .map(|r| HotSeat {
                seat_id: r.seat_id,
                section: r.section,
                row: r.row,
                holds: r.holds,
            })
            .collect())
    }

    async fn revenue_by_price_tier(
        &self,
        ctx: &Context<'_>,
        event_id: Uuid,
    ) -> Result<Vec<TierRevenue>> {
        let rows = managed(ctx, event_id)
            .await?
            .reports
            .revenue_by_tier(event_id)
            .await
            .map_err(failed)?;
        Ok(rows
            .into_iter()
            .map(|r| TierRevenue {
                price_tier: r.price_tier,
                seats_booked: r.seats_booked,
                revenue_cents: r.revenue_cents,
            })
            .collect())
    }

    /// Customers with the most seats (for spotting scalpers).
    async fn top_customers(
        &self,
        ctx: &Context<'_>,
        event_id: Uuid,
        #[graphql(default = 10, validator(minimum = 1, maximum = 1000))] limit: u32,
    ) -> Result<Vec<CustomerSeats>> {
        let rows = managed(ctx, event_id)
            .await?
            .reports
            .top_customers(event_id, limit)
            .await
            .map_err(failed)?;
        Ok(rows
            .into_iter()
            .map(|r| CustomerSeats {
                customer_id: r.customer_id,
                seats_booked: r.seats_booked,
                seats_held: r.seats_held,
                holds: r.holds,
            })
            .collect())
    }

    /// Runs one read-only statement as ClickHouse's read-only user (row and time limits apply);
    /// one JSON object per result row. The table is `domain_events`.
    async fn sql(&self, ctx: &Context<'_>, query: String) -> Result<Vec<Json<serde_json::Value>>> {
        let caller = auth::caller(ctx)?;
        caller
            .require(booking::Role::Organizer)
            .map_err(from_command)?;
        let scope = if caller.role == booking::Role::Admin || caller.all_events {
            analytics::Scope::All
        } else {
            let events = reads(ctx)
                .organizer_events(caller.customer.as_str())
                .await
                .map_err(|e| read_failed(std::sync::Arc::new(e)))?;
            analytics::Scope::Events(events)
        };
        let lines = sources(ctx)?
            .adhoc
            .run(&query, &scope)
            .await
            .map_err(|e| match e {
                analytics::AdhocError::NotReadOnly => coded("sql_not_read_only", e.to_string()),
                analytics::AdhocError::Refused(_) => coded("sql_refused", e.to_string()),
                analytics::AdhocError::Unavailable(_) => {
                    coded("analytics_unavailable", e.to_string())
                }
            })?;
        Ok(lines
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str(l).ok())
            .map(Json)
            .collect())
    }
}
