//! The `analytics` GraphQL fields over a live ClickHouse stream, and the read-only ad-hoc SQL.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{error_code, eventually, spawn_system, spawn_system_with_analytics};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_fields_report_the_sale_and_adhoc_sql_is_read_only() {
    let app = spawn_system_with_analytics().await;
    let event = app.create_grid_event(2, 5, 600).await;
    let a = app.hold(&event, "kai", &[0, 1]).await["data"]["holdSeats"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.hold(&event, "lea", &[7]).await;
    app.data(
        "mutation($h: UUID!) { bookHold(holdId: $h, customerId: \"kai\") { status } }",
        json!({"h": a}),
    )
    .await;

    let query = "query($e: UUID!) { analytics {
        salesVelocity(eventId: $e) { minute seatsHeld seatsBooked }
        conversion(eventId: $e) { holds booked released expired conversionRate }
        sellOut(eventId: $e) { capacity seatsBooked soldOut secondsToSellOut }
        demandHeat(eventId: $e) { section row seatHolds seatsBooked }
        hotSeats(eventId: $e, limit: 2) { seatId holds }
        revenueByPriceTier(eventId: $e) { priceTier seatsBooked revenueCents }
        topCustomers(eventId: $e, limit: 5) { customerId seatsBooked seatsHeld holds } } }";
    eventually(Duration::from_secs(15), || async {
        let d = app.data(query, json!({"e": event})).await;
        (d["analytics"]["conversion"]["booked"] == 1).then_some(())
    })
    .await;
    // Each field is its own ClickHouse query, resolved side by side, so one answer can straddle a
    // batch landing; once the booking is in, a fresh answer sees every batch in every field.
    let report = app.data(query, json!({"e": event})).await["analytics"].clone();
    assert_eq!(report["conversion"]["holds"], 2);
    assert_eq!(report["conversion"]["conversionRate"], 0.5);
    assert_eq!(report["sellOut"]["capacity"], 10);
    assert_eq!(report["sellOut"]["seatsBooked"], 2);
    assert_eq!(report["sellOut"]["soldOut"], false);
    assert_eq!(
        report["revenueByPriceTier"],
        json!([{"priceTier": "Standard", "seatsBooked": 2, "revenueCents": 10000}])
    );
    assert_eq!(
        report["topCustomers"][0],
        json!({"customerId": "kai", "seatsBooked": 2, "seatsHeld": 2, "holds": 1})
    );
    assert_eq!(
        report["demandHeat"][0],
        json!({"section": "Main", "row": "1", "seatHolds": 2, "seatsBooked": 2})
    );
    let minute_held: u64 = report["salesVelocity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seatsHeld"].as_u64().unwrap())
        .sum();
    assert_eq!(minute_held, 3);

    let booked = domain::stored::event_type::SEAT_BOOKED;
    let rows = app
        .data(
            &format!("{{ analytics {{ sql(query: \"SELECT event_type, count() AS n FROM domain_events FINAL WHERE event_type = '{booked}' GROUP BY event_type\") }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(rows["analytics"]["sql"][0]["event_type"], booked);
    let write = app
        .gql(
            "{ analytics { sql(query: \"DROP TABLE domain_events\") } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&write), "sql_not_read_only");
    let sneaky = app
        .gql(
            "{ analytics { sql(query: \"SELECT 1 FORMAT TSV; DROP TABLE domain_events\") } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&sneaky), "sql_not_read_only");
    let huge = app
        .gql(
            "{ analytics { sql(query: \"SELECT number FROM system.numbers\") } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&huge), "sql_refused");
    assert!(huge["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("Limit"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_without_clickhouse_is_a_clear_error() {
    let app = spawn_system().await;
    let body = app
        .gql(
            "query($e: UUID!) { analytics { conversion(eventId: $e) { holds } } }",
            json!({"e": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(error_code(&body), "analytics_unavailable");
}
