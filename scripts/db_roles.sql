-- The database logins a stage needs before its first `migrate apply`, run once by the RDS master
-- user (docs/security.md, "Database roles"), with psql, from a host that reaches the instance:
--
--   psql "$MASTER_URL" -v ON_ERROR_STOP=1 -v database=registration \
--        -v migrator=registration_migrator -v migrator_password="$MIGRATOR_PASSWORD" \
--        -v runtime=registration_api -v runtime_password="$RUNTIME_PASSWORD" \
--        -v watch=registration_drift_watch -v watch_password="$WATCH_PASSWORD" \
--        -f scripts/db_roles.sql
--
-- Each name and password is the `username` and `password` of the foundation's secret
-- (infra/foundation.yaml: registration-<stage>-db-migrator, -db-runtime, -db-watch; the master
-- user's is RDS's own secret, output DbMasterSecretArn). The secrets rotate themselves later
-- (single-user rotation: each login changes its own password), so this file runs only once.
--
-- The migrator is what `migrate` connects as, instead of the master user.  It has the rights that
-- work needs and no more: it owns the application's database (so it owns schema public, creates
-- and changes the tables, creates the trusted extension pg_trgm, grants the runtime role its rows),
-- and may create databases (verify replays the migrations into a scratch one and drops it).
-- It is no superuser, cannot create roles, and cannot bypass row-level security.
CREATE ROLE :"migrator" LOGIN CREATEDB NOSUPERUSER NOCREATEROLE NOBYPASSRLS PASSWORD :'migrator_password';
-- PostgreSQL 16+: the master user must be able to SET ROLE to the migrator to hand it the database.
GRANT :"migrator" TO CURRENT_USER;
ALTER DATABASE :"database" OWNER TO :"migrator";
-- Migrations 011 and 030 create the runtime and the watch roles when they are missing; the
-- migrator may not create roles, so they are created here, as 011 and 030 would, and the
-- migrations then grant them what they hold.
CREATE ROLE registration_app NOLOGIN;
CREATE ROLE registration_watch NOLOGIN;
-- The functions' login (through RDS Proxy, which authenticates with the same secret): rows only,
-- by membership of registration_app.
CREATE ROLE :"runtime" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS IN ROLE registration_app
    PASSWORD :'runtime_password';
-- The hourly drift watch's login (issue 24): a member of registration_watch and nothing more; it
-- reads the catalog, the history and the stored expected schema, and cannot write or create.
CREATE ROLE :"watch" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS IN ROLE registration_watch
    PASSWORD :'watch_password';
