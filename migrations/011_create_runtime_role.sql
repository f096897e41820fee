-- The runtime role: what every function except migrate connects as, through a login
-- role that is a member of it (README, "Security").  It reads and writes rows and
-- cannot change the schema: it owns nothing, and may not create in schema public.
--
-- Roles belong to the whole server, not to one database, so this file creates the
-- role only when it is missing: it runs again on every database of the server (the
-- test suite's many, a scratch replay of the migrations), and two databases migrated
-- at once may both find it missing: the loser of that race carries on.  NOLOGIN: no
-- password lives in a migration; each stage's login role and its secret are the
-- operator's (README).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'registration_app') THEN
        CREATE ROLE registration_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- PostgreSQL 15 and later create schema public without CREATE for PUBLIC; a database
-- that began on an older version may still grant it.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO registration_app;

-- Rows only.  The status history is an audit trail: added to, never changed.
-- A migration that creates a table grants the runtime role what it needs on it, in
-- the same file (tests/security/test_least_privilege.py fails on a table without).
GRANT SELECT, INSERT, UPDATE, DELETE ON
    packages,
    customer_registrations,
    customers,
    installation_tickets,
    notification_outbox,
    idempotency_keys,
    registration_otps
TO registration_app;
GRANT SELECT, INSERT ON registration_status_history TO registration_app;
GRANT USAGE ON SEQUENCE customer_number_seq, installation_ticket_number_seq TO registration_app;
