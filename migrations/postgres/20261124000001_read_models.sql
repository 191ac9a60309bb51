-- The read side: projection checkpoints, a wake-up signal for projectors, and the durable read models
-- the Redis cache is filled from.

-- One row per projection: the last global position it applied. Written in the same transaction as
-- the projection's changes, so "applied" and "checkpointed" cannot disagree.
CREATE TABLE projection_checkpoints
(
    name           text        PRIMARY KEY,
    transaction_id bigint      NOT NULL DEFAULT 0,
    position       bigint      NOT NULL DEFAULT 0,
    events_applied bigint      NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Wakes projectors when events are appended (once per statement, delivered at commit). Projectors
-- also poll, so a lost notification only delays them.
CREATE FUNCTION notify_events_appended() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('seatgrid_events', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER events_appended AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_events_appended();

-- Versions of cached read models. A sequence never goes back, not even when a projection is rebuilt,
-- so a cache entry can always tell whether it is older than the durable row.
CREATE SEQUENCE read_model_version;

-- Ticketed events, in creation order (the cursor of the events list).
CREATE TABLE rm_events
(
    event_id   uuid        PRIMARY KEY,
    list_order bigserial   UNIQUE,
    definition jsonb       NOT NULL,
    seat_count integer     NOT NULL,
    created_at timestamptz NOT NULL
);

-- The seat map of an event, in the same compact encoding the API serves: one character per seat id
-- ('A' available, 'H' held, 'B' booked).
CREATE TABLE rm_seat_maps
(
    event_id uuid   PRIMARY KEY,
    seats    text   NOT NULL,
    version  bigint NOT NULL
);

-- Holds and bookings, per hold.
CREATE TABLE rm_holds
(
    hold_id     uuid        PRIMARY KEY,
    event_id    uuid        NOT NULL,
    customer_id text        NOT NULL,
    status      text        NOT NULL,
    seats       integer[]   NOT NULL,
    held_seats  integer     NOT NULL DEFAULT 0,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     bigint      NOT NULL
);
CREATE INDEX rm_holds_by_customer ON rm_holds (customer_id, created_at);

-- The last sequence number applied per aggregate: an event at or below it is a redelivery.
CREATE TABLE rm_applied
(
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    sequence       bigint NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);
