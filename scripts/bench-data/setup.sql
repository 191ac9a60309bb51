DROP TABLE IF EXISTS bench_events;
CREATE TABLE bench_events (LIKE events INCLUDING ALL);
