-- Replays of POST requests that carried an Idempotency-Key: the same key and body
-- get the first response again; the same key with another body is refused.
CREATE TABLE idempotency_keys (
    scope text NOT NULL,
    key text NOT NULL,
    request_sha256 text NOT NULL,
    response_status integer NOT NULL,
    response_body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
