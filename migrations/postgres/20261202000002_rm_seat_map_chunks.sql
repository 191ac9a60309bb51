-- The seat map in chunks of 1,000 seats (chunk c holds seat ids 1000c .. 1000c + 999), so a
-- projected batch that changes a few seats rewrites a few short rows, not the whole map of a
-- 100,000-seat event. rm_seat_maps keeps the map's version and its counts; readers assemble the
-- map from rm_seat_map_view in one statement (one snapshot).
CREATE TABLE rm_seat_map_chunks
(
    event_id uuid    NOT NULL,
    chunk    integer NOT NULL,
    seats    text    NOT NULL,
    PRIMARY KEY (event_id, chunk)
);

ALTER TABLE rm_seat_maps
    ADD COLUMN available integer NOT NULL DEFAULT 0,
    ADD COLUMN held      integer NOT NULL DEFAULT 0,
    ADD COLUMN booked    integer NOT NULL DEFAULT 0;

UPDATE rm_seat_maps
   SET available = length(seats) - length(replace(seats, 'A', '')),
       held      = length(seats) - length(replace(seats, 'H', '')),
       booked    = length(seats) - length(replace(seats, 'B', ''));

INSERT INTO rm_seat_map_chunks (event_id, chunk, seats)
SELECT event_id, c, substr(seats, c * 1000 + 1, 1000)
  FROM rm_seat_maps, generate_series(0, (length(seats) - 1) / 1000) AS c
 WHERE length(seats) > 0;

ALTER TABLE rm_seat_maps DROP COLUMN seats;

-- The whole map of an event, as the API serves it.
CREATE VIEW rm_seat_map_view AS
SELECT m.event_id, string_agg(c.seats, '' ORDER BY c.chunk) AS seats, m.version,
       m.available, m.held, m.booked
  FROM rm_seat_maps m
  JOIN rm_seat_map_chunks c ON c.event_id = m.event_id
 GROUP BY m.event_id;
