-- pgbench: the bare Postgres work of one optimistic event append per transaction, as the command
-- path does it (read the stream's last sequence, insert the next event with a jsonb payload into a
-- table shaped like `events`; the primary key is the optimistic lock). Streams are spread over
-- 1,000 blocks, so appends rarely collide.
\set block random(1, 1000)
BEGIN;
SELECT COALESCE(max(sequence), 0) AS last FROM bench_events WHERE aggregate_type = 'SeatBlock' AND aggregate_id = 'b' || :block \gset
INSERT INTO bench_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
VALUES ('SeatBlock', 'b' || :block, :last + 1, 'SeatHeld', '1',
        '{"SeatHeld": {"seats": [1], "customer_id": "pgbench"}}', '{}')
ON CONFLICT DO NOTHING;
COMMIT;
