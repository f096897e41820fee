-- How many codes a registration has been sent: resending is capped, so that
-- five wrong tries per code cannot become an unbounded brute force.
ALTER TABLE registration_otps ADD COLUMN codes_sent integer NOT NULL DEFAULT 1;
