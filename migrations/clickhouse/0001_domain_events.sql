-- Every domain event of the event store, one row each, in typed columns. Runs on ClickHouse 18.16
-- and current ClickHouse alike (see ../shared notes: no DateTime64, no LowCardinality, no Map).
--
-- Exactly-once from at-least-once delivery: a re-sent batch inserts the same rows again, and
-- ReplacingMergeTree keeps one row per sorting key (event_id, transaction_id, position), the event's
-- place in the global order. Merges happen in the background, so readers use FINAL.
CREATE TABLE IF NOT EXISTS domain_events
(
    transaction_id UInt64,
    position       Int64,
    aggregate_type String,
    stream_id      String,
    sequence       Int64,
    event_type     String,
    event_id       String,
    hold_id        String,
    customer_id    String,
    seats          Array(UInt32),
    seat_count     UInt32,
    seat_sections  Array(String),
    seat_rows      Array(String),
    seat_tiers     Array(String),
    seat_prices    Array(UInt64),
    amount_cents   UInt64,
    capacity       UInt32,
    currency       String,
    reason         String,
    occurred_at    DateTime('UTC'),
    occurred_at_ms Int64,
    recorded_at_ms Int64,
    ingested_at_ms Int64
)
ENGINE = ReplacingMergeTree(ingested_at_ms)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (event_id, transaction_id, position)
