-- WhatsApp messages to send, written in the same transaction as the change they
-- announce and sent after commit, so that a WhatsApp outage delays and never loses.
CREATE TABLE notification_outbox (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- One message per event: e.g. 'customer_created:<registration id>'.
    dedupe_key text NOT NULL,
    registration_id uuid REFERENCES customer_registrations (id),
    recipient text NOT NULL,
    template text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    provider_message_id text,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    CONSTRAINT valid_notification_status CHECK (
        status IN ('pending', 'sending', 'sent', 'failed', 'unknown')
    )
);

CREATE UNIQUE INDEX notification_outbox_dedupe_key ON notification_outbox (dedupe_key);

-- What the scheduled sender reads: due rows only.
CREATE INDEX notification_outbox_due_idx
    ON notification_outbox (next_attempt_at)
    WHERE status = 'pending';
