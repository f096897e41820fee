-- Internet packages a prospective customer can register for.
CREATE TABLE packages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    speed_mbps integer NOT NULL,
    monthly_price_idr bigint NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT packages_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    CONSTRAINT packages_speed_positive CHECK (speed_mbps > 0),
    CONSTRAINT packages_price_not_negative CHECK (monthly_price_idr >= 0)
);

CREATE UNIQUE INDEX packages_name_key ON packages (lower(name));
