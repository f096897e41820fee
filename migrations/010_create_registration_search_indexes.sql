-- migrate: no-transaction
-- Staff search (GET /registrations?q=, ?city=): a phone, an e-mail in any letter
-- case, or part of a name; the city in any letter case.  Each index is built
-- CONCURRENTLY, so that writers are not blocked while it builds; each statement
-- runs alone and is safe to run again (chalicelib/migrate/files.py); squawk
-- assumes every file is one transaction (.squawk.toml), this one is not:
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction
--
-- pg_trgm is a trusted extension (PostgreSQL 13 and later): the database owner may
-- create it, on RDS too, without rds_superuser.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Part of a name, any letter case: full_name ILIKE '%part%' (pg_trgm's GIN
-- operator class serves LIKE and ILIKE).
CREATE INDEX CONCURRENTLY IF NOT EXISTS customer_registrations_full_name_trgm_idx
    ON customer_registrations USING gin (full_name gin_trgm_ops);

-- Every registration of one e-mail or one phone, newest first, terminal ones
-- too (the unique indexes of 002 cover only the active ones).
CREATE INDEX CONCURRENTLY IF NOT EXISTS customer_registrations_email_lower_created_idx
    ON customer_registrations (lower(email), created_at, id);

CREATE INDEX CONCURRENTLY IF NOT EXISTS customer_registrations_phone_created_idx
    ON customer_registrations (phone, created_at, id);

-- ?city= in any letter case, newest first: a range of this index, page after page.
CREATE INDEX CONCURRENTLY IF NOT EXISTS customer_registrations_city_lower_created_idx
    ON customer_registrations (lower(city), created_at, id);
