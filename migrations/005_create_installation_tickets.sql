-- The installation visit that follows a new customer.
CREATE SEQUENCE installation_ticket_number_seq AS bigint;

CREATE TABLE installation_tickets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    ticket_number text NOT NULL
        DEFAULT 'INS-' || lpad(nextval('installation_ticket_number_seq')::text, 7, '0'),
    customer_id uuid NOT NULL REFERENCES customers (id),
    status text NOT NULL DEFAULT 'open',
    scheduled_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT valid_ticket_status CHECK (status IN ('open', 'scheduled', 'done', 'cancelled'))
);

ALTER SEQUENCE installation_ticket_number_seq OWNED BY installation_tickets.ticket_number;

-- The first installation ticket is created with the customer, once.
CREATE UNIQUE INDEX installation_tickets_customer_id_key ON installation_tickets (customer_id);
CREATE UNIQUE INDEX installation_tickets_ticket_number_key ON installation_tickets (ticket_number);
