-- The database roles a stage needs before its first `migrate apply`, run once by the RDS master
-- user (docs/security.md, "Database roles"), with psql:
--
--   psql "$MASTER_URL" -v ON_ERROR_STOP=1 -v database=registration \
--        -v migrator=registration_migrator -v migrator_password="$MIGRATOR_PASSWORD" -f scripts/db_roles.sql
--
-- The migrator is what `migrate` and the hourly drift watch connect as (their secret,
-- registration-<stage>-db-migrator), instead of the master user.  It has the rights that work
-- needs and no more: it owns the application's database (so it owns schema public, creates and
-- changes the tables, creates the trusted extension pg_trgm, grants the runtime role its rows),
-- and may create databases (verify replays the migrations into a scratch one and drops it).
-- It is no superuser, cannot create roles, and cannot bypass row-level security.
CREATE ROLE :"migrator" LOGIN CREATEDB NOSUPERUSER NOCREATEROLE NOBYPASSRLS PASSWORD :'migrator_password';
-- PostgreSQL 16+: the master user must be able to SET ROLE to the migrator to hand it the database.
GRANT :"migrator" TO CURRENT_USER;
ALTER DATABASE :"database" OWNER TO :"migrator";
-- Migration 011 creates the runtime role when it is missing; the migrator may not create roles,
-- so it is created here, as 011 would (the login roles that are members of it are the operator's).
CREATE ROLE registration_app NOLOGIN;
