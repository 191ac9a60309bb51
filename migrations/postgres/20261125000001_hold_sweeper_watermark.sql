-- The hold sweeper's watermark: a place in the global event order (transaction_id, position; see
-- the projections' event log) at or below which every SeatHeld event is closed by a later event of
-- its block (booked, released or expired). A sweeper pass looks only at seat holds above it, so its
-- work follows the holds still open instead of growing with the whole history. It only moves forward,
-- and only over holds every reader can see (below pg_snapshot_xmin), so a hold whose transaction
-- commits late is never passed over. Several sweepers may advance it at once.
CREATE TABLE hold_sweeper_watermark
(
    singleton      boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    transaction_id bigint      NOT NULL DEFAULT 0,
    position       bigint      NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
INSERT INTO hold_sweeper_watermark DEFAULT VALUES;

-- Seat holds in global order: what a sweeper pass reads above the watermark.
CREATE INDEX events_seat_holds ON events (transaction_id, position)
    WHERE aggregate_type = 'SeatBlock' AND event_type = 'SeatHeld';
