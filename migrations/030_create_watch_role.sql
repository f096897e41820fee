-- The drift watch's role: reads what verify reads, changes nothing, creates nothing.
--
-- With the expected schema stored per set of migrations (chalicelib/migrate/stored.py),
-- the hourly schema_drift_watch needs no scratch database (no CREATEDB) and no write:
-- it reads the catalog (open to every role), the history table and the stored expected
-- schema, and PREPAREs the code's statements (which checks no table privilege).  Both
-- tables exist before any file runs (the runner creates them).  NOLOGIN, as 011: each
-- stage's login role (IN ROLE registration_watch) and its secret are the operator's.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'registration_watch') THEN
        CREATE ROLE registration_watch NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO registration_watch;
GRANT SELECT ON schema_migrations, migrate_expected_schema TO registration_watch;
