-- One-time codes sent: WhatsApp bills each one.  Counted per client (source IP) per
-- hour and for everyone per day, by the same statement that creates the code, which
-- refuses to create it past either limit (chalicelib, OTP budgets; README, Security).
CREATE TABLE otp_send_counts (
    -- 'client:<source IP>' (hourly windows) or 'all' (daily windows, UTC).
    bucket text NOT NULL,
    window_start timestamptz NOT NULL,
    sends integer NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, window_start)
);

-- The daily job forgets past windows.
CREATE INDEX otp_send_counts_window_start_idx ON otp_send_counts (window_start);

GRANT SELECT, INSERT, UPDATE, DELETE ON otp_send_counts TO registration_app;
