//! `seatgrid report`: the organizer reports of one ticketed event, printed as plain tables.

use analytics::reports::{self, Reports, REPORTS};
use analytics::ClickHouseConfig;
use uuid::Uuid;

fn table(title: &str, header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!("\n{title}");
    println!("{}", line(header.iter().map(|h| (*h).to_owned()).collect()));
    println!("{}", line(widths.iter().map(|w| "-".repeat(*w)).collect()));
    if rows.is_empty() {
        println!("(none)");
    }
    for row in rows {
        println!("{}", line(row));
    }
}

pub async fn print(
    config: &ClickHouseConfig,
    event_id: Uuid,
    sql_only: bool,
    limit: u32,
) -> anyhow::Result<()> {
    if sql_only {
        for name in REPORTS {
            let sql = reports::sql(name, event_id, limit).expect("a known report");
            println!("-- {name}\n{sql};\n");
        }
        return Ok(());
    }
    let r = Reports::new(config.writer());
    let minute = |s: u32| {
        chrono::DateTime::from_timestamp(i64::from(s), 0)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    table(
        "Sales velocity (seats per minute)",
        &["minute (UTC)", "held", "booked"],
        r.velocity(event_id)
            .await?
            .into_iter()
            .map(|v| {
                vec![
                    minute(v.minute),
                    v.seats_held.to_string(),
                    v.seats_booked.to_string(),
                ]
            })
            .collect(),
    );
    let c = r.conversion(event_id).await?;
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    table(
        "Holds and how they ended",
        &[
            "holds",
            "booked",
            "released",
            "expired",
            "failed",
            "conversion",
            "expiry rate",
            "release rate",
        ],
        vec![vec![
            c.holds.to_string(),
            c.booked.to_string(),
            c.released.to_string(),
            c.expired.to_string(),
            c.failed.to_string(),
            pct(c.conversion_rate()),
            pct(c.expiry_rate()),
            pct(c.release_rate()),
        ]],
    );
    let o = r.orders(event_id).await?;
    let ms = |x: i64, any: u64| {
        if any > 0 {
            x.to_string()
        } else {
            "-".into()
        }
    };
    table(
        "Orders and payments",
        &[
            "orders",
            "paid",
            "confirmed",
            "payment failed",
            "expired",
            "cancelled",
            "refunded",
            "revenue (cents)",
            "refunded (cents)",
            "failure rate",
            "time to pay p50/p95 (ms)",
            "to confirmed p95 (ms)",
        ],
        vec![vec![
            o.orders.to_string(),
            o.paid.to_string(),
            o.confirmed.to_string(),
            o.payment_failed.to_string(),
            o.expired.to_string(),
            o.cancelled.to_string(),
            o.refunded.to_string(),
            o.revenue_cents.to_string(),
            o.refunded_cents.to_string(),
            pct(o.payment_failure_rate()),
            format!(
                "{}/{}",
                ms(o.time_to_pay_p50_ms, o.paid),
                ms(o.time_to_pay_p95_ms, o.paid)
            ),
            ms(o.time_to_confirm_p95_ms, o.confirmed),
        ]],
    );
    let s = r.sell_out(event_id).await?;
    table(
        "Sell-out",
        &[
            "capacity",
            "seats booked",
            "sold out",
            "seconds to sell out",
        ],
        vec![vec![
            s.capacity.to_string(),
            s.seats_booked.to_string(),
            s.sold_out().to_string(),
            s.seconds_to_sell_out()
                .map_or("-".into(), |t| format!("{t:.1}")),
        ]],
    );
    table(
        "Demand per row (most held first)",
        &["section", "row", "seat holds", "seats booked"],
        r.heat(event_id)
            .await?
            .into_iter()
            .map(|h| {
                vec![
                    h.section,
                    h.row,
                    h.seat_holds.to_string(),
                    h.seats_booked.to_string(),
                ]
            })
            .collect(),
    );
    table(
        "Hot seats (most contested)",
        &["seat id", "section", "row", "holds"],
        r.hot_seats(event_id, limit)
            .await?
            .into_iter()
            .map(|h| vec![h.seat_id.to_string(), h.section, h.row, h.holds.to_string()])
            .collect(),
    );
    table(
        "Revenue per price tier",
        &["price tier", "seats booked", "revenue (cents)"],
        r.revenue_by_tier(event_id)
            .await?
            .into_iter()
            .map(|t| {
                vec![
                    t.price_tier,
                    t.seats_booked.to_string(),
                    t.revenue_cents.to_string(),
                ]
            })
            .collect(),
    );
    table(
        "Top customers by seats",
        &["customer", "seats booked", "seats held", "holds"],
        r.top_customers(event_id, limit)
            .await?
            .into_iter()
            .map(|t| {
                vec![
                    t.customer_id,
                    t.seats_booked.to_string(),
                    t.seats_held.to_string(),
                    t.holds.to_string(),
                ]
            })
            .collect(),
    );
    Ok(())
}
