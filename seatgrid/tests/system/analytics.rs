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
    app.as_organizer()
        .data(
            "mutation($h: UUID!) { bookHold(holdId: $h) { status } }",
            json!({"h": a}),
        )
        .await;
    // Another organizer's event, whose rows olga's SQL must not see.
    let oscar = app.as_("oscar", booking::Role::Organizer);
    oscar
        .data(
            "mutation { createEvent(input: {name: \"Elsewhere\", layout: {rows: 1, cols: 2}}) { id } }",
            json!({}),
        )
        .await;
    let olga = app.as_organizer();

    let query = "query($e: UUID!) { analytics {
        salesVelocity(eventId: $e) { minute seatsHeld seatsBooked }
        conversion(eventId: $e) { holds booked released expired conversionRate }
        sellOut(eventId: $e) { capacity seatsBooked soldOut secondsToSellOut }
        demandHeat(eventId: $e) { section row seatHolds seatsBooked }
        hotSeats(eventId: $e, limit: 2) { seatId holds }
        revenueByPriceTier(eventId: $e) { priceTier seatsBooked revenueCents }
        topCustomers(eventId: $e, limit: 5) { customerId seatsBooked seatsHeld holds } } }";
    // Reports are for the event's organizer and admins.
    for (who, code) in [
        (app.anonymous(), "unauthenticated"),
        (app.as_buyer("kai"), "forbidden"),
        (oscar.clone(), "forbidden"),
    ] {
        assert_eq!(error_code(&who.gql(query, json!({"e": event})).await), code);
    }
    eventually(Duration::from_secs(15), || async {
        let d = olga.data(query, json!({"e": event})).await;
        (d["analytics"]["conversion"]["booked"] == 1).then_some(())
    })
    .await;
    // Each field is its own ClickHouse query, resolved side by side, so one answer can straddle a
    // batch landing; once the booking is in, a fresh answer sees every batch in every field.
    let report = olga.data(query, json!({"e": event})).await["analytics"].clone();
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
    let rows = olga
        .data(
            &format!("{{ analytics {{ sql(query: \"SELECT event_type, count() AS n FROM domain_events FINAL WHERE event_type = '{booked}' GROUP BY event_type\") }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(rows["analytics"]["sql"][0]["event_type"], booked);
    // An organizer's SQL sees only their own events' rows; an admin's sees every row.
    let events =
        "{ analytics { sql(query: \"SELECT uniqExact(event_id) AS n FROM domain_events\") } }";
    let everyone = eventually(Duration::from_secs(15), || async {
        let d = app.as_admin().data(events, json!({})).await;
        (d["analytics"]["sql"][0]["n"] == "2" || d["analytics"]["sql"][0]["n"] == 2).then_some(d)
    })
    .await;
    let hers = olga.data(events, json!({})).await;
    assert_eq!(
        hers["analytics"]["sql"][0]["n"]
            .to_string()
            .trim_matches('"'),
        "1",
        "{hers} vs {everyone}"
    );
    let buyer = app.as_buyer("kai").gql(events, json!({})).await;
    assert_eq!(error_code(&buyer), "forbidden");
    let elsewhere = olga
        .gql(
            "{ analytics { sql(query: \"SELECT * FROM system.tables\") } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&elsewhere), "sql_refused");
    let write = olga
        .gql(
            "{ analytics { sql(query: \"DROP TABLE domain_events\") } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&write), "sql_not_read_only");
    let sneaky = olga
        .gql(
            "{ analytics { sql(query: \"SELECT 1 FORMAT TSV; DROP TABLE domain_events\") } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&sneaky), "sql_not_read_only");
    let huge = app
        .as_admin()
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
    let event = app.create_grid_event(1, 2, 600).await;
    let query = "query($e: UUID!) { analytics { conversion(eventId: $e) { holds } } }";
    let body = app.as_organizer().gql(query, json!({"e": event})).await;
    assert_eq!(error_code(&body), "analytics_unavailable");
    let unknown = app
        .as_admin()
        .gql(query, json!({"e": uuid::Uuid::new_v4()}))
        .await;
    assert_eq!(error_code(&unknown), "event_not_found");
}
