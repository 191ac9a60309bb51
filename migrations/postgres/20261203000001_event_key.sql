-- The event each stored row belongs to, for sharding the event store by event (Citus-style; see
-- docs/SCALING.md). Seat blocks are named `{event_id}.{first_seat}`, allowances
-- `{event_id}/{customer}`, ticketed events `{event_id}`: the first 36 characters are the event id.
-- (Orders are named by their own id: their rows carry the order id here; docs/SCALING.md says what
-- changes before orders can live on their event's shard.)
--
-- A distributed table's unique constraints must contain its distribution column, so event_key
-- joins the primary keys, last, where it changes nothing on one server: it is a function of
-- aggregate_id, so the keys stay exactly as unique as before (a second writer of a sequence is still
-- refused) and lookups by (aggregate_type, aggregate_id) still use them.
ALTER TABLE events
    ADD COLUMN event_key text GENERATED ALWAYS AS (left(aggregate_id, 36)) STORED;
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ADD PRIMARY KEY (aggregate_type, aggregate_id, sequence, event_key);
DROP INDEX events_by_hold;
CREATE INDEX events_by_hold ON events (hold_id, aggregate_type, event_key) WHERE hold_id IS NOT NULL;

ALTER TABLE snapshots
    ADD COLUMN event_key text GENERATED ALWAYS AS (left(aggregate_id, 36)) STORED;
ALTER TABLE snapshots DROP CONSTRAINT snapshots_pkey;
ALTER TABLE snapshots ADD PRIMARY KEY (aggregate_type, aggregate_id, last_sequence, event_key);

-- Read models distributed by event (co-located with their events): the event joins their keys.
ALTER TABLE rm_holds DROP CONSTRAINT rm_holds_pkey;
ALTER TABLE rm_holds ADD PRIMARY KEY (hold_id, event_id);
ALTER TABLE rm_orders DROP CONSTRAINT rm_orders_pkey;
ALTER TABLE rm_orders ADD PRIMARY KEY (order_id, event_id);
