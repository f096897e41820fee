-- The one-time code that proves a registrant owns the phone.  Only a keyed hash
-- of the code is kept.
CREATE TABLE registration_otps (
    registration_id uuid PRIMARY KEY REFERENCES customer_registrations (id),
    code_hash bytea NOT NULL,
    expires_at timestamptz NOT NULL,
    failed_attempts integer NOT NULL DEFAULT 0,
    sent_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now()
);
