//! The rules that keep the event store shardable by event (Citus-style, docs/SCALING.md): every
//! unique key of a table to be distributed contains its distribution column (Citus refuses the
//! table otherwise), every index the command path looks rows up by names it, every seat block,
//! allowance and ticketed event row is keyed by its event, and no transaction writes two events'
//! rows, even when the group commit takes holds of two events at once.

use futures::future::join_all;
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::spawn_app;

/// Tables to be distributed, and their distribution column.
const DISTRIBUTED: [(&str, &str); 6] = [
    ("events", "event_key"),
    ("snapshots", "event_key"),
    ("rm_seat_maps", "event_id"),
    ("rm_seat_map_chunks", "event_id"),
    ("rm_holds", "event_id"),
    ("rm_orders", "event_id"),
];

/// (index name, is unique, its columns) of `table`.
async fn indexes(pool: &PgPool, table: &str) -> Vec<(String, bool, Vec<String>)> {
    sqlx::query_as(
        "SELECT i.relname::text, x.indisunique,
                array_agg(a.attname::text ORDER BY k.ord)
           FROM pg_index x
           JOIN pg_class i ON i.oid = x.indexrelid
           JOIN pg_class t ON t.oid = x.indrelid
           CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
          WHERE t.relname = $1
          GROUP BY i.relname, x.indisunique",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn every_unique_key_of_a_distributed_table_contains_its_distribution_column() {
    let app = spawn_app().await;
    for (table, column) in DISTRIBUTED {
        let found = indexes(&app.pool, table).await;
        assert!(!found.is_empty(), "{table} has no index");
        for (name, unique, columns) in found.iter().filter(|(_, unique, _)| *unique) {
            assert!(
                columns.iter().any(|c| c == column),
                "{table}: unique index {name} ({columns:?}, unique {unique}) lacks {column}"
            );
        }
    }
    // The command path's lookups: an aggregate's events (the primary key) and a hold's blocks.
    let events = indexes(&app.pool, "events").await;
    for wanted in ["events_pkey", "events_by_hold"] {
        let (_, _, columns) = events.iter().find(|(n, _, _)| n == wanted).unwrap();
        assert!(
            columns.iter().any(|c| c == "event_key"),
            "{wanted}: {columns:?}"
        );
    }
}

#[tokio::test]
async fn no_transaction_writes_two_events_and_every_row_is_keyed_by_its_event() {
    let app = spawn_app().await;
    let events = [
        app.create_grid_event(4, 10, json!({})).await,
        app.create_grid_event(4, 10, json!({})).await,
    ];
    // Holds of both events at once, so that the group commit finds both in its queue.
    let holds = join_all((0..40u32).map(|i| {
        let (app, event) = (&app, &events[i as usize % 2]);
        async move {
            let response = app.hold(event, &format!("fan{i}"), json!([i / 2])).await;
            assert_eq!(response.status(), 201);
            let hold: serde_json::Value = response.json().await.unwrap();
            hold["hold_id"].as_str().unwrap().to_owned()
        }
    }))
    .await;
    // Bookings and releases of both, at once too.
    join_all(holds.iter().enumerate().take(20).map(|(i, id)| {
        let app = &app;
        async move {
            let response = if i % 2 == 0 {
                app.comp(id).await
            } else {
                let customer = format!("fan{}", i);
                app.as_customer(Method::DELETE, &format!("/api/holds/{id}"), &customer)
                    .await
            };
            assert!(response.status().is_success(), "{}", response.status());
        }
    }))
    .await;

    let spanning: Vec<(String, i64)> = sqlx::query_as(
        "SELECT transaction_id::text, count(DISTINCT event_key)
           FROM events GROUP BY transaction_id HAVING count(DISTINCT event_key) > 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(
        spanning.is_empty(),
        "transactions across events: {spanning:?}"
    );
    let transactions: i64 = sqlx::query_scalar("SELECT count(DISTINCT transaction_id) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(
        transactions < rows,
        "the group commit wrote no two rows together ({rows} rows)"
    );

    // Seat blocks, allowances and ticketed events: keyed by their event.
    let keyed: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT aggregate_type, event_key FROM events
          WHERE aggregate_type IN ('SeatBlock', 'CustomerAllowance', 'TicketedEvent')",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(keyed.len(), 6, "{keyed:?}");
    assert!(
        keyed.iter().all(|(_, key)| events.contains(key)),
        "{keyed:?}"
    );
}
