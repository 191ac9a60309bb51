//! The organizer reports, as SQL over `domain_events` (the same SQL is documented for
//! `clickhouse-client` in analytics/README.md).
//!
//! Money is counted from orders: revenue is what confirmed orders that were not refunded paid
//! (`orders`); `revenue` by price tier counts booked seats at their prices, complimentary tickets
//! included.
//!
//! Policy: every report reads with `FINAL`, so a batch the ingester sent twice counts once. A
//! booking taken back (`BookingUndone`, when another block of its hold refused) is subtracted from
//! what was booked, so bookings and revenue count only seats that stayed sold. Reports
//! take the ticketed event's id as a typed [`Uuid`], formatted into the SQL (18.16 has no
//! server-side parameters), so no caller text ever reaches the SQL.

use clickhouse::Row;
use domain::stored::aggregate_type::{ORDER, SEAT_BLOCK};
use domain::stored::event_type::{
    ALLOWANCE_RETURNED, BOOKING_UNDONE, HOLD_EXPIRED, ORDER_CANCELLED, ORDER_CONFIRMED,
    ORDER_EXPIRED, ORDER_PLACED, ORDER_REFUNDED, PAYMENT_FAILED, PAYMENT_SUCCEEDED, SEAT_BOOKED,
    SEAT_HELD,
};
use domain::ReturnReason;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub type ReportResult<T> = Result<T, clickhouse::error::Error>;

/// Seats held and booked in one minute.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct VelocityRow {
    /// Start of the minute, seconds since the epoch (UTC).
    pub minute: u32,
    pub seats_held: u64,
    pub seats_booked: u64,
}

/// How holds ended.
#[derive(Debug, Clone, PartialEq, Eq, Default, Row, Serialize, Deserialize)]
pub struct ConversionRow {
    pub holds: u64,
    pub booked: u64,
    pub released: u64,
    pub expired: u64,
    /// Holds undone after some of their seats were taken: a hold over several seat blocks that
    /// a later block refused. One refused at its first block wrote nothing (its allowance
    /// reservation commits with that block's seats) and is not counted.
    pub failed: u64,
    pub seats_held: u64,
    pub seats_booked: u64,
}

impl ConversionRow {
    fn rate(part: u64, whole: u64) -> f64 {
        if whole == 0 {
            0.0
        } else {
            part as f64 / whole as f64
        }
    }
    /// Share of holds that became bookings.
    pub fn conversion_rate(&self) -> f64 {
        Self::rate(self.booked, self.holds)
    }
    pub fn expiry_rate(&self) -> f64 {
        Self::rate(self.expired, self.holds)
    }
    pub fn release_rate(&self) -> f64 {
        Self::rate(self.released, self.holds)
    }
}

/// Whether and how fast the event sold out (every seat booked).
#[derive(Debug, Clone, PartialEq, Eq, Default, Row, Serialize, Deserialize)]
pub struct SellOutRow {
    pub capacity: u32,
    pub seats_booked: u64,
    /// First hold and last booking, milliseconds since the epoch (0 when none).
    pub first_hold_ms: i64,
    pub last_booking_ms: i64,
}

impl SellOutRow {
    pub fn sold_out(&self) -> bool {
        self.capacity > 0 && self.seats_booked >= u64::from(self.capacity)
    }
    /// From the first hold to the booking that took the last seat.
    pub fn seconds_to_sell_out(&self) -> Option<f64> {
        self.sold_out()
            .then(|| (self.last_booking_ms - self.first_hold_ms) as f64 / 1000.0)
    }
}

/// Demand per row: how many times its seats were held, and booked.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct HeatRow {
    pub section: String,
    pub row: String,
    pub seat_holds: u64,
    pub seats_booked: u64,
}

/// The most contested seats: held most often.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct HotSeatRow {
    pub seat_id: u32,
    pub section: String,
    pub row: String,
    pub holds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct TierRevenueRow {
    pub price_tier: String,
    pub seats_booked: u64,
    pub revenue_cents: u64,
}

/// Customers by seats: many bookings by one customer is how scalpers show.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct CustomerRow {
    pub customer_id: String,
    pub seats_booked: u64,
    pub seats_held: u64,
    pub holds: u64,
}

/// Orders and payments of one event: how orders ended, the money kept and given back, how often
/// payments fail and how long buyers take to pay.
#[derive(Debug, Clone, PartialEq, Eq, Default, Row, Serialize, Deserialize)]
pub struct OrdersRow {
    pub orders: u64,
    pub paid: u64,
    pub confirmed: u64,
    pub payment_failed: u64,
    pub expired: u64,
    pub cancelled: u64,
    pub refunded: u64,
    /// Confirmed orders not refunded: the money the sale kept.
    pub revenue_cents: u64,
    pub refunded_cents: u64,
    /// From order placed to payment succeeded, over paid orders (0 when none).
    pub time_to_pay_p50_ms: i64,
    pub time_to_pay_p95_ms: i64,
    /// From order placed to confirmed (seats booked), over confirmed orders (0 when none).
    pub time_to_confirm_p95_ms: i64,
}

impl OrdersRow {
    /// Failed payments among payments with an outcome.
    pub fn payment_failure_rate(&self) -> f64 {
        ConversionRow::rate(self.payment_failed, self.paid + self.payment_failed)
    }
}

/// `booked - undone` as a `UInt64`, never below zero (an undo may land in another minute).
fn net(booked: &str, undone: &str) -> String {
    format!("toUInt64(greatest(0, toInt64({booked}) - toInt64({undone})))")
}

/// The report SQL, by name, for one ticketed event (also printed by `seatgrid report --sql`).
pub fn sql(report: &str, event_id: Uuid, limit: u32) -> Option<String> {
    let e = event_id;
    let (held, booked, expired, returned, undone) = (
        SEAT_HELD,
        SEAT_BOOKED,
        HOLD_EXPIRED,
        ALLOWANCE_RETURNED,
        BOOKING_UNDONE,
    );
    let seats_booked = net(
        &format!("sumIf(seat_count, event_type = '{booked}')"),
        &format!("sumIf(seat_count, event_type = '{undone}')"),
    );
    let booked_holds = net(
        &format!("uniqExactIf(hold_id, event_type = '{booked}')"),
        &format!("uniqExactIf(hold_id, event_type = '{undone}')"),
    );
    let rows_booked = net(
        &format!("countIf(event_type = '{booked}')"),
        &format!("countIf(event_type = '{undone}')"),
    );
    let revenue = net(
        &format!("sumIf(price, event_type = '{booked}')"),
        &format!("sumIf(price, event_type = '{undone}')"),
    );
    let block = SEAT_BLOCK;
    let (released, failed) = (
        ReturnReason::Released.as_str(),
        ReturnReason::HoldFailed.as_str(),
    );
    Some(match report {
        "velocity" => format!(
            "SELECT toUInt32(toStartOfMinute(occurred_at)) AS minute,
                    sumIf(seat_count, event_type = '{held}') AS seats_held,
                    {seats_booked} AS seats_booked
               FROM domain_events FINAL
              WHERE event_id = '{e}' AND aggregate_type = '{block}'
              GROUP BY minute ORDER BY minute"
        ),
        "conversion" => format!(
            "SELECT uniqExactIf(hold_id, event_type = '{held}') AS holds,
                    {booked_holds} AS booked,
                    uniqExactIf(hold_id, event_type = '{returned}' AND reason = '{released}') AS released,
                    uniqExactIf(hold_id, event_type IN ('{expired}', '{undone}')) AS expired,
                    uniqExactIf(hold_id, event_type = '{returned}' AND reason = '{failed}') AS failed,
                    sumIf(toUInt64(seat_count), event_type = '{held}') AS seats_held,
                    {seats_booked} AS seats_booked
               FROM domain_events FINAL
              WHERE event_id = '{e}'"
        ),
        "sell_out" => format!(
            "SELECT max(capacity) AS capacity,
                    {seats_booked} AS seats_booked,
                    minIf(occurred_at_ms, event_type = '{held}') AS first_hold_ms,
                    maxIf(occurred_at_ms, event_type = '{booked}') AS last_booking_ms
               FROM domain_events FINAL
              WHERE event_id = '{e}'"
        ),
        "heat" => format!(
            "SELECT section, row,
                    countIf(event_type = '{held}') AS seat_holds,
                    {rows_booked} AS seats_booked
               FROM domain_events FINAL
              ARRAY JOIN seat_sections AS section, seat_rows AS row
              WHERE event_id = '{e}' AND aggregate_type = '{block}'
              GROUP BY section, row
              ORDER BY seat_holds DESC, section, row"
        ),
        "hot_seats" => format!(
            "SELECT seat AS seat_id, any(seat_section) AS section, any(seat_row) AS row,
                    count() AS holds
               FROM domain_events FINAL
              ARRAY JOIN seats AS seat, seat_sections AS seat_section, seat_rows AS seat_row
              WHERE event_id = '{e}' AND event_type = '{held}'
              GROUP BY seat
              ORDER BY holds DESC, seat_id
              LIMIT {limit}"
        ),
        "revenue" => format!(
            "SELECT tier AS price_tier, {rows_booked} AS seats_booked,
                    {revenue} AS revenue_cents
               FROM domain_events FINAL
              ARRAY JOIN seat_tiers AS tier, seat_prices AS price
              WHERE event_id = '{e}' AND event_type IN ('{booked}', '{undone}')
              GROUP BY tier
             HAVING seats_booked > 0
              ORDER BY revenue_cents DESC, price_tier"
        ),
        "orders" => {
            let (order, placed, paid, failed, confirmed) = (
                ORDER,
                ORDER_PLACED,
                PAYMENT_SUCCEEDED,
                PAYMENT_FAILED,
                ORDER_CONFIRMED,
            );
            let (expired_o, cancelled, refunded) = (ORDER_EXPIRED, ORDER_CANCELLED, ORDER_REFUNDED);
            format!(
                "SELECT toUInt64(countIf(is_placed)) AS orders,
                        toUInt64(countIf(is_paid)) AS paid,
                        toUInt64(countIf(is_confirmed)) AS confirmed,
                        toUInt64(countIf(is_failed)) AS payment_failed,
                        toUInt64(countIf(is_expired)) AS expired,
                        toUInt64(countIf(is_cancelled)) AS cancelled,
                        toUInt64(countIf(is_refunded)) AS refunded,
                        toUInt64(sumIf(amount, is_confirmed AND NOT is_refunded)) AS revenue_cents,
                        toUInt64(sumIf(amount, is_refunded)) AS refunded_cents,
                        toInt64(if(countIf(is_paid AND is_placed) = 0, 0,
                            quantileExactIf(0.5)(pay_ms, is_paid AND is_placed))) AS time_to_pay_p50_ms,
                        toInt64(if(countIf(is_paid AND is_placed) = 0, 0,
                            quantileExactIf(0.95)(pay_ms, is_paid AND is_placed))) AS time_to_pay_p95_ms,
                        toInt64(if(countIf(is_confirmed AND is_placed) = 0, 0,
                            quantileExactIf(0.95)(confirm_ms, is_confirmed AND is_placed))) AS time_to_confirm_p95_ms
                   FROM (
                     SELECT stream_id,
                            max(amount_cents) AS amount,
                            countIf(event_type = '{placed}') > 0 AS is_placed,
                            countIf(event_type = '{paid}') > 0 AS is_paid,
                            countIf(event_type = '{confirmed}') > 0 AS is_confirmed,
                            countIf(event_type = '{failed}') > 0 AND countIf(event_type = '{paid}') = 0 AS is_failed,
                            countIf(event_type = '{expired_o}') > 0 AND countIf(event_type = '{paid}') = 0 AS is_expired,
                            countIf(event_type = '{cancelled}') > 0 AS is_cancelled,
                            countIf(event_type = '{refunded}') > 0 AS is_refunded,
                            minIf(occurred_at_ms, event_type = '{paid}')
                              - minIf(occurred_at_ms, event_type = '{placed}') AS pay_ms,
                            minIf(occurred_at_ms, event_type = '{confirmed}')
                              - minIf(occurred_at_ms, event_type = '{placed}') AS confirm_ms
                       FROM domain_events FINAL
                      WHERE event_id = '{e}' AND aggregate_type = '{order}'
                      GROUP BY stream_id)"
            )
        }
        "top_customers" => format!(
            "SELECT customer_id,
                    {seats_booked} AS seats_booked,
                    sumIf(toUInt64(seat_count), event_type = '{held}') AS seats_held,
                    uniqExactIf(hold_id, event_type = '{held}') AS holds
               FROM domain_events FINAL
              WHERE event_id = '{e}' AND aggregate_type = '{block}'
              GROUP BY customer_id
              ORDER BY seats_booked DESC, seats_held DESC, customer_id
              LIMIT {limit}"
        ),
        _ => return None,
    })
}

/// Every report's name, in the order the CLI prints them.
pub const REPORTS: &[&str] = &[
    "velocity",
    "conversion",
    "sell_out",
    "heat",
    "hot_seats",
    "revenue",
    "top_customers",
    "orders",
];

/// How long one report may run on the server; the client waits a second longer.
pub const REPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The most rows one report may return (the largest, demand per row, has at most one per row).
pub const MAX_REPORT_ROWS: u64 = 100_000;

/// Runs reports against the analytics database, each with a time and a row limit.
#[derive(Clone)]
pub struct Reports {
    client: clickhouse::Client,
}

impl Reports {
    /// `client` must point at the analytics database.
    pub fn new(client: clickhouse::Client) -> Self {
        // Without this, an error in the middle of a result would be read as rows.
        Self {
            client: client
                .with_setting("wait_end_of_query", "1")
                .with_setting("max_execution_time", REPORT_TIMEOUT.as_secs().to_string())
                .with_setting("max_result_rows", MAX_REPORT_ROWS.to_string())
                .with_setting("result_overflow_mode", "throw"),
        }
    }

    async fn rows<T>(&self, report: &str, event_id: Uuid, limit: u32) -> ReportResult<Vec<T>>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        let Some(sql) = sql(report, event_id, limit) else {
            return Err(clickhouse::error::Error::Custom(format!(
                "no report named {report}"
            )));
        };
        let wait = REPORT_TIMEOUT + std::time::Duration::from_secs(1);
        tokio::time::timeout(wait, self.client.query(&sql).fetch_all::<T>())
            .await
            .unwrap_or(Err(clickhouse::error::Error::TimedOut))
    }

    pub async fn velocity(&self, event_id: Uuid) -> ReportResult<Vec<VelocityRow>> {
        self.rows("velocity", event_id, 0).await
    }

    pub async fn conversion(&self, event_id: Uuid) -> ReportResult<ConversionRow> {
        Ok(self
            .rows("conversion", event_id, 0)
            .await?
            .pop()
            .unwrap_or_default())
    }

    pub async fn sell_out(&self, event_id: Uuid) -> ReportResult<SellOutRow> {
        Ok(self
            .rows("sell_out", event_id, 0)
            .await?
            .pop()
            .unwrap_or_default())
    }

    pub async fn heat(&self, event_id: Uuid) -> ReportResult<Vec<HeatRow>> {
        self.rows("heat", event_id, 0).await
    }

    pub async fn hot_seats(&self, event_id: Uuid, limit: u32) -> ReportResult<Vec<HotSeatRow>> {
        self.rows("hot_seats", event_id, limit).await
    }

    pub async fn revenue_by_tier(&self, event_id: Uuid) -> ReportResult<Vec<TierRevenueRow>> {
        self.rows("revenue", event_id, 0).await
    }

    pub async fn orders(&self, event_id: Uuid) -> ReportResult<OrdersRow> {
        Ok(self
            .rows("orders", event_id, 0)
            .await?
            .pop()
            .unwrap_or_default())
    }

    pub async fn top_customers(
        &self,
        event_id: Uuid,
        limit: u32,
    ) -> ReportResult<Vec<CustomerRow>> {
        self.rows("top_customers", event_id, limit).await
    }
}
