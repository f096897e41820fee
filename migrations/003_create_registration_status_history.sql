-- Every status a registration has had: who moved it, when, from where, and why.
CREATE TABLE registration_status_history (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    registration_id uuid NOT NULL REFERENCES customer_registrations (id),
    action text NOT NULL,
    from_status text,
    to_status text NOT NULL,
    actor text NOT NULL,
    reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT valid_from_status CHECK (from_status IN (
        'pending_verification',
        'verified',
        'survey_scheduled',
        'survey_completed',
        'approved',
        'customer_created',
        'rejected',
        'cancelled'
    )),
    CONSTRAINT valid_to_status CHECK (to_status IN (
        'pending_verification',
        'verified',
        'survey_scheduled',
        'survey_completed',
        'approved',
        'customer_created',
        'rejected',
        'cancelled'
    ))
);

CREATE INDEX registration_status_history_registration_idx
    ON registration_status_history (registration_id, id);
