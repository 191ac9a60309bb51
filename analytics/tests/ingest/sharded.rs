//! The sharded layout answers every report as one server does.

use analytics::reports::Reports;
use analytics::testing::{fresh_config, server_url};
use analytics::{ClickHouseConfig, CLICKHOUSE_STREAM};
use booking::BookingCommands;
use domain::EventId;
use uuid::Uuid;

use crate::helpers::*;

/// Every report of one event, as a comparable text.
async fn all_reports(ch: &ClickHouseConfig, id: Uuid) -> Vec<String> {
    let r = Reports::new(ch.writer());
    vec![
        format!("{:?}", r.velocity(id).await.unwrap()),
        format!("{:?}", r.conversion(id).await.unwrap()),
        format!("{:?}", r.sell_out(id).await.unwrap()),
        format!("{:?}", r.heat(id).await.unwrap()),
        format!("{:?}", r.hot_seats(id, 10).await.unwrap()),
        format!("{:?}", r.revenue_by_tier(id).await.unwrap()),
        format!("{:?}", r.orders(id).await.unwrap()),
        format!("{:?}", r.top_customers(id, 10).await.unwrap()),
    ]
}

/// The sharded layout (two shards of the local server's `seatgrid_shards` cluster, in
/// scripts/clickhouse/config.xml) gives every report the same answer as one server, from the same
/// event store: the events are streamed into both, one after the other, and a batch is streamed
/// twice into the shards (exactly once in effect there too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_reports_equal_the_single_server_ones() {
    let (pool, service, single) = setup(&server_url()).await;
    let event = service
        .create_event(venue(), &organizer(), &ctx())
        .await
        .unwrap();
    sale(service.clone(), EventId(event.id), 60).await;
    let ingester = start_ingester(&pool, &single);
    wait_ingested(&pool).await;
    ingester.abort();

    let sharded = ClickHouseConfig {
        sharding: Some(analytics::Sharding {
            cluster: "seatgrid_shards".into(),
            shard_databases: vec!["seatgrid_shard_1".into(), "seatgrid_shard_2".into()],
        }),
        ..fresh_config(&server_url())
    };
    sharded.migrate().await.expect("the sharded schema");
    // The same events again, into the shards: from the start, twice over.
    for _ in 0..2 {
        sqlx::query(
            "UPDATE projection_checkpoints SET transaction_id = 0, position = 0, events_applied = 0
              WHERE name = $1",
        )
        .bind(CLICKHOUSE_STREAM)
        .execute(&pool)
        .await
        .unwrap();
        let ingester = start_ingester(&pool, &sharded);
        wait_ingested(&pool).await;
        ingester.abort();
    }
    // One row per event of this sale in both (the shards also hold other runs' events).
    let rows = |ch: ClickHouseConfig| async move {
        ch.writer()
            .with_setting("wait_end_of_query", "1")
            .query("SELECT count() AS n FROM domain_events FINAL WHERE event_id = ?")
            .bind(event.id.to_string())
            .fetch_one::<Count>()
            .await
            .unwrap()
            .n
    };
    let in_single = rows(single.clone()).await;
    assert!(in_single > 60, "{in_single}");
    assert_eq!(rows(sharded.clone()).await, in_single);
    let one = all_reports(&single, event.id).await;
    assert!(!one[1].contains("holds: 0,"), "{one:?}");
    assert_eq!(all_reports(&sharded, event.id).await, one);
}
