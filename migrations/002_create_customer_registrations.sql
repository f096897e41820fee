-- A prospective customer's registration and where it stands in the workflow.
-- The statuses are chalicelib.statuses.RegistrationStatus; `migrate verify`
-- proves that valid_status, the default and the partial indexes agree with it.
CREATE TABLE customer_registrations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    full_name text NOT NULL,
    email text NOT NULL,
    phone text NOT NULL,
    address text NOT NULL,
    city text NOT NULL,
    package_id uuid NOT NULL REFERENCES packages (id),
    notes text,
    status text NOT NULL DEFAULT 'pending_verification',
    survey_scheduled_at timestamptz,
    surveyor text,
    survey_feasible boolean,
    survey_notes text,
    status_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT valid_status CHECK (status IN (
        'pending_verification',
        'verified',
        'survey_scheduled',
        'survey_completed',
        'approved',
        'customer_created',
        'rejected',
        'cancelled'
    )),
    -- Stored as E.164 (+62...), whatever the person typed.
    CONSTRAINT customer_registrations_phone_e164 CHECK (phone ~ '^\+62[0-9]{8,13}$')
);

-- One active registration per phone and per e-mail (any letter case): the
-- database, not a read before the write, is what makes the duplicate a 409.
CREATE UNIQUE INDEX customer_registrations_active_phone_key
    ON customer_registrations (phone)
    WHERE status NOT IN ('customer_created', 'rejected', 'cancelled');

CREATE UNIQUE INDEX customer_registrations_active_email_key
    ON customer_registrations (lower(email))
    WHERE status NOT IN ('customer_created', 'rejected', 'cancelled');

-- Keyset pagination: newest first, optionally within one status.
CREATE INDEX customer_registrations_created_idx ON customer_registrations (created_at, id);
CREATE INDEX customer_registrations_status_created_idx ON customer_registrations (status, created_at, id);
