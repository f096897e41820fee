-- Personal data erased, on a person's request or when the retention period ended
-- (chalicelib/privacy; docs/api.md, "Personal data"): who, when and why, one row per
-- registration.  No personal data here: erased_by is a staff subject or 'retention',
-- and the reason is stored with the person's own details taken out of it.
CREATE TABLE personal_data_erasures (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    registration_id uuid NOT NULL REFERENCES customer_registrations (id),
    erased_by text NOT NULL,
    reason text NOT NULL,
    erased_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT personal_data_erasures_registration_key UNIQUE (registration_id)
);

-- An erasure record is added, never changed (like the status history).
GRANT SELECT, INSERT ON personal_data_erasures TO registration_app;

-- Erasing blanks the free-text reasons of a registration's history; the rest of the
-- audit trail (who moved it, when, from where to where) stays unchangeable.
GRANT UPDATE (reason) ON registration_status_history TO registration_app;
