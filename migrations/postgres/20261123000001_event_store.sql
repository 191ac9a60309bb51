-- The event store used by postgres-es (cqrs-es), extended with a global order for readers.
--
-- postgres-es writes only the first seven columns; everything after them is filled in by Postgres:
--   position        a global, monotonically increasing number (an identity: values become visible
--                   out of order, because transactions commit out of order);
--   transaction_id  the inserting transaction, so readers can stay below the oldest transaction still
--                   running (pg_snapshot_xmin) and never skip an event committed late;
--   recorded_at     wall-clock time of the insert;
--   hold_id         the hold a seat-block or allowance event is about, for lookups by hold.
-- payload and metadata are jsonb (postgres-es binds serde_json values, which encode as jsonb).
-- Optimistic versioning per aggregate is the primary key: a second writer of the same sequence gets a
-- unique violation, which postgres-es reports as a conflict. Do not add other unique constraints here:
-- their violations would be misread as conflicts.
CREATE TABLE events
(
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    sequence       bigint      NOT NULL CHECK (sequence >= 0),
    event_type     text        NOT NULL,
    event_version  text        NOT NULL,
    payload        jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    position       bigint      GENERATED ALWAYS AS IDENTITY,
    transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    hold_id        uuid GENERATED ALWAYS AS ((jsonb_path_query_first(payload, '$.*.hold_id') #>> '{}')::uuid) STORED,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE INDEX events_global_order ON events (transaction_id, position);
CREATE INDEX events_by_hold ON events (hold_id, aggregate_type) WHERE hold_id IS NOT NULL;

-- Only used by snapshotting stores (postgres-es); kept so aggregates can move to snapshots later.
CREATE TABLE snapshots
(
    aggregate_type   text   NOT NULL,
    aggregate_id     text   NOT NULL,
    last_sequence    bigint NOT NULL CHECK (last_sequence >= 0),
    current_snapshot bigint NOT NULL CHECK (current_snapshot >= 0),
    payload          jsonb  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- Responses stored under a client's Idempotency-Key for 24 hours.
CREATE TABLE idempotency_keys
(
    key              text        PRIMARY KEY,
    fingerprint      bytea       NOT NULL,
    state            text        NOT NULL CHECK (state IN ('in_flight', 'done')),
    response_status  smallint,
    response_headers jsonb,
    response_body    bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
