-- A registration turned customer.  registration_id is unique: however often the
-- create-customer message is delivered, there is one customer per registration.
CREATE SEQUENCE customer_number_seq AS bigint;

CREATE TABLE customers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Human-friendly, for the phone and the invoice: CUS-0000001.
    customer_number text NOT NULL
        DEFAULT 'CUS-' || lpad(nextval('customer_number_seq')::text, 7, '0'),
    registration_id uuid NOT NULL REFERENCES customer_registrations (id),
    full_name text NOT NULL,
    email text NOT NULL,
    phone text NOT NULL,
    address text NOT NULL,
    city text NOT NULL,
    package_id uuid NOT NULL REFERENCES packages (id),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

ALTER SEQUENCE customer_number_seq OWNED BY customers.customer_number;

CREATE UNIQUE INDEX customers_registration_id_key ON customers (registration_id);
CREATE UNIQUE INDEX customers_customer_number_key ON customers (customer_number);
