-- How many of a hold's seats the seat blocks have booked: a hold reads booked only once all of them
-- are (a booking part way, or one about to be undone, still reads held). Holds booked before this
-- column existed keep their status; the count only matters for holds still changing.
ALTER TABLE rm_holds ADD COLUMN booked_seats integer NOT NULL DEFAULT 0;
