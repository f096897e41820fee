"""Hand-made drift, each applied to a migrated database: what verify must catch, and name.

Each scenario is the SQL someone might run by hand on production, and the drift
verify must report: its kind, and the object's name, which must appear in the
message.  ``tests/integration/test_drift_catalogue.py`` runs each one on a fresh
copy of the migrated database (PostgreSQL 15 and 18), checks that exactly these
kinds are reported, runs every ``fix_sql`` and checks that verify is clean after;
``bench/schema_drift.py`` runs the same catalogue through the other tools.
"""

from dataclasses import dataclass

import psycopg

# A statement that is meant to fail (and leave what it leaves behind) starts with this line.
MAY_FAIL = "-- may fail\n"

# A BEFORE INSERT OR UPDATE trigger that refuses the status the worker writes.
_REJECT_FUNCTION = """
CREATE FUNCTION refuse_customer_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'customer_created' THEN
        RAISE EXCEPTION 'not yet';
    END IF;
    RETURN NEW;
END $$"""


@dataclass(frozen=True)
class Scenario:
    name: str
    sql: tuple[str, ...]
    # (drift kind, a name that must appear in that drift's message); a statement that no longer
    # prepares is named by its module
    expect: tuple[tuple[str, str], ...]
    min_server_version: int = 0


def apply_scenario(url: str, scenario: Scenario) -> None:
    """Run the scenario's statements, each committed on its own, as a person at a psql prompt would."""
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in scenario.sql:
            try:
                conn.execute(statement.encode())
            except psycopg.Error:
                if not statement.startswith(MAY_FAIL):
                    raise


def _s(name: str, sql: str | tuple[str, ...], *expect: tuple[str, str], min_version: int = 0) -> Scenario:
    return Scenario(name, (sql,) if isinstance(sql, str) else sql, expect, min_version)


SCENARIOS: tuple[Scenario, ...] = (
    # Tables
    _s(
        "table dropped",
        "DROP TABLE idempotency_keys",
        ("table_missing", "idempotency_keys"),
        ("statement_does_not_prepare", "chalicelib.registrations.repository"),
    ),
    _s(
        "table with an owned sequence dropped",
        "DROP TABLE installation_tickets",
        ("table_missing", "installation_tickets"),
        ("sequence_missing", "installation_ticket_number_seq"),
        ("statement_does_not_prepare", "chalicelib.customers.repository"),
    ),
    _s("table added by hand", "CREATE TABLE referral_codes (code text PRIMARY KEY)", ("table_extra", "referral_codes")),
    _s(
        "table renamed",
        "ALTER TABLE idempotency_keys RENAME TO idempotency_records",
        ("table_missing", "idempotency_keys"),
        ("table_extra", "idempotency_records"),
        ("statement_does_not_prepare", "chalicelib.registrations.repository"),
    ),
    _s(
        "view added by hand",
        "CREATE VIEW active_packages AS SELECT * FROM packages WHERE is_active",
        ("table_extra", "active_packages"),
    ),
    _s(
        "table made UNLOGGED",
        "ALTER TABLE idempotency_keys SET UNLOGGED",
        ("table_persistence_differs", "idempotency_keys"),
    ),
    # Columns
    _s(
        "column dropped",
        "ALTER TABLE customers DROP COLUMN created_by",
        ("column_missing", "created_by"),
        ("statement_does_not_prepare", "chalicelib.customers.repository"),
    ),
    _s(
        "column renamed",
        "ALTER TABLE customers RENAME COLUMN phone TO phone_number",
        ("column_missing", "phone"),
        ("column_extra", "phone_number"),
        ("statement_does_not_prepare", "chalicelib.customers.repository"),
    ),
    _s(
        "NOT NULL column added by hand",
        "ALTER TABLE customers ADD COLUMN tax_id text NOT NULL",
        ("column_extra", "tax_id"),
    ),
    _s(
        "generated column added by hand",
        "ALTER TABLE customers ADD COLUMN name_lower text GENERATED ALWAYS AS (lower(full_name)) STORED",
        ("column_extra", "name_lower"),
    ),
    _s(
        "column type narrowed",
        "ALTER TABLE customers ALTER COLUMN full_name TYPE varchar(20)",
        ("column_type_differs", "full_name"),
    ),
    _s(
        "column type changed, integer to bigint",
        "ALTER TABLE notification_outbox ALTER COLUMN attempts TYPE bigint",
        ("column_type_differs", "attempts"),
    ),
    _s(
        "column collation changed",
        'ALTER TABLE customer_registrations ALTER COLUMN city TYPE text COLLATE "C"',
        ("column_type_differs", "city"),
    ),
    _s(
        "NOT NULL dropped",
        "ALTER TABLE customer_registrations ALTER COLUMN email DROP NOT NULL",
        ("column_nullability_differs", "email"),
    ),
    _s(
        "NOT NULL added",
        "ALTER TABLE customer_registrations ALTER COLUMN notes SET NOT NULL",
        ("column_nullability_differs", "notes"),
    ),
    _s(
        "default changed",
        "ALTER TABLE packages ALTER COLUMN is_active SET DEFAULT false",
        ("column_default_differs", "is_active"),
    ),
    _s(
        "default dropped",
        "ALTER TABLE notification_outbox ALTER COLUMN attempts DROP DEFAULT",
        ("column_default_differs", "attempts"),
    ),
    _s(
        "default of an enum column changed",
        "ALTER TABLE customer_registrations ALTER COLUMN status SET DEFAULT 'verified'",
        ("default_mismatch", "status"),
    ),
    _s(
        "identity made BY DEFAULT",
        "ALTER TABLE registration_status_history ALTER COLUMN id SET GENERATED BY DEFAULT",
        ("column_identity_differs", "id"),
    ),
    _s(
        "identity dropped",
        "ALTER TABLE registration_status_history ALTER COLUMN id DROP IDENTITY",
        ("column_identity_differs", "id"),
    ),
    # Constraints
    _s(
        "primary key dropped",
        "ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey",
        ("primary_key_missing", "idempotency_keys_pkey"),
    ),
    _s(
        "foreign key dropped",
        "ALTER TABLE installation_tickets DROP CONSTRAINT installation_tickets_customer_id_fkey",
        ("foreign_key_missing", "installation_tickets_customer_id_fkey"),
    ),
    _s(
        "foreign key given ON DELETE CASCADE",
        "ALTER TABLE installation_tickets DROP CONSTRAINT installation_tickets_customer_id_fkey, "
        "ADD CONSTRAINT installation_tickets_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers (id) "
        "ON DELETE CASCADE",
        ("foreign_key_differs", "installation_tickets_customer_id_fkey"),
    ),
    _s(
        "foreign key made DEFERRABLE",
        "ALTER TABLE customers ALTER CONSTRAINT customers_registration_id_fkey DEFERRABLE INITIALLY DEFERRED",
        ("foreign_key_differs", "customers_registration_id_fkey"),
    ),
    _s(
        "foreign key NOT VALID",
        "ALTER TABLE customers DROP CONSTRAINT customers_package_id_fkey, ADD CONSTRAINT customers_package_id_fkey "
        "FOREIGN KEY (package_id) REFERENCES packages (id) NOT VALID",
        ("constraint_not_validated", "customers_package_id_fkey"),
    ),
    _s(
        "foreign key triggers disabled (DISABLE TRIGGER ALL)",
        "ALTER TABLE installation_tickets DISABLE TRIGGER ALL",
        ("constraint_not_enforced", "installation_tickets_customer_id_fkey"),
    ),
    _s(
        "CHECK dropped",
        "ALTER TABLE packages DROP CONSTRAINT packages_speed_positive",
        ("check_missing", "packages_speed_positive"),
    ),
    _s(
        "CHECK loosened",
        "ALTER TABLE packages DROP CONSTRAINT packages_price_not_negative, "
        "ADD CONSTRAINT packages_price_not_negative CHECK (monthly_price_idr > -1000)",
        ("check_differs", "packages_price_not_negative"),
    ),
    _s(
        "CHECK NOT VALID",
        "ALTER TABLE packages DROP CONSTRAINT packages_speed_positive, "
        "ADD CONSTRAINT packages_speed_positive CHECK (speed_mbps > 0) NOT VALID",
        ("constraint_not_validated", "packages_speed_positive"),
    ),
    _s(
        "CHECK NOT ENFORCED",
        "ALTER TABLE packages DROP CONSTRAINT packages_speed_positive, "
        "ADD CONSTRAINT packages_speed_positive CHECK (speed_mbps > 0) NOT ENFORCED",
        ("constraint_not_enforced", "packages_speed_positive"),
        min_version=180000,
    ),
    _s(
        "CHECK added by hand",
        "ALTER TABLE customers ADD CONSTRAINT customers_short_name CHECK (char_length(full_name) < 10)",
        ("check_extra", "customers_short_name"),
    ),
    _s(
        "unique constraint added by hand",
        "ALTER TABLE customers ADD CONSTRAINT customers_email_key UNIQUE (email)",
        ("unique_extra", "customers_email_key"),
    ),
    _s(
        "exclusion constraint added by hand",
        "ALTER TABLE packages ADD CONSTRAINT packages_one_per_speed EXCLUDE USING btree (speed_mbps WITH =)",
        ("exclusion_extra", "packages_one_per_speed"),
    ),
    _s(
        "the incident: valid_status without customer_created",
        "ALTER TABLE customer_registrations DROP CONSTRAINT valid_status, ADD CONSTRAINT valid_status CHECK "
        "(status IN ('pending_verification', 'verified', 'survey_scheduled', 'survey_completed', 'approved', "
        "'rejected', 'cancelled'))",
        ("check_rejects_value", "valid_status"),
    ),
    _s(
        "enum CHECK dropped",
        "ALTER TABLE installation_tickets DROP CONSTRAINT valid_ticket_status",
        ("check_missing", "valid_ticket_status"),
    ),
    # Indexes
    _s(
        "unique index dropped (one customer per registration)",
        "DROP INDEX customers_registration_id_key",
        ("index_missing", "customers_registration_id_key"),
    ),
    _s("index dropped", "DROP INDEX idempotency_keys_created_idx", ("index_missing", "idempotency_keys_created_idx")),
    _s(
        "unique index made non-unique",
        (
            "DROP INDEX installation_tickets_customer_id_key",
            "CREATE INDEX installation_tickets_customer_id_key ON installation_tickets (customer_id)",
        ),
        ("index_differs", "installation_tickets_customer_id_key"),
    ),
    _s(
        "index keys changed",
        (
            "DROP INDEX customer_registrations_created_idx",
            "CREATE INDEX customer_registrations_created_idx ON customer_registrations (created_at)",
        ),
        ("index_differs", "customer_registrations_created_idx"),
    ),
    _s(
        "index method changed",
        (
            "DROP INDEX idempotency_keys_created_idx",
            "CREATE INDEX idempotency_keys_created_idx ON idempotency_keys USING hash (created_at)",
        ),
        ("index_differs", "idempotency_keys_created_idx"),
    ),
    _s(
        "index given a predicate",
        (
            "DROP INDEX registration_status_history_registration_idx",
            "CREATE INDEX registration_status_history_registration_idx ON registration_status_history "
            "(registration_id, id) WHERE reason IS NOT NULL",
        ),
        ("index_differs", "registration_status_history_registration_idx"),
    ),
    _s(
        "unique index INVALID after a failed CONCURRENTLY build",
        (
            "DROP INDEX packages_name_key",
            "INSERT INTO packages (name, speed_mbps, monthly_price_idr) VALUES ('Twin', 10, 1), ('twin', 10, 1)",
            MAY_FAIL + "CREATE UNIQUE INDEX CONCURRENTLY packages_name_key ON packages (lower(name))",
            "DELETE FROM packages WHERE name = 'twin'",
        ),
        ("index_invalid", "packages_name_key"),
    ),
    _s(
        "enum index predicate changed",
        (
            "DROP INDEX customer_registrations_active_phone_key",
            "CREATE UNIQUE INDEX customer_registrations_active_phone_key ON customer_registrations (phone) "
            "WHERE status NOT IN ('customer_created', 'rejected')",
        ),
        ("index_predicate_mismatch", "customer_registrations_active_phone_key"),
    ),
    _s(
        "index added by hand",
        "CREATE INDEX customers_email_idx ON customers (email)",
        ("index_extra", "customers_email_idx"),
    ),
    _s(
        "unique index added by hand",
        "CREATE UNIQUE INDEX customers_phone_key ON customers (phone)",
        ("index_extra", "customers_phone_key"),
    ),
    # Triggers and functions
    _s(
        "trigger that rejects customer_created",
        (
            _REJECT_FUNCTION,
            "CREATE TRIGGER customer_registrations_hold BEFORE INSERT OR UPDATE ON customer_registrations "
            "FOR EACH ROW EXECUTE FUNCTION refuse_customer_created()",
        ),
        ("trigger_extra", "customer_registrations_hold"),
        ("function_extra", "refuse_customer_created"),
    ),
    _s(
        "function added by hand",
        "CREATE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 42'",
        ("function_extra", "answer"),
    ),
    # Row-level security, grants, owners
    _s(
        "row-level security enabled",
        "ALTER TABLE customers ENABLE ROW LEVEL SECURITY",
        ("row_level_security_differs", "customers"),
    ),
    _s(
        "row-level security forced",
        "ALTER TABLE customers FORCE ROW LEVEL SECURITY",
        ("row_level_security_differs", "customers"),
    ),
    _s(
        "policy added by hand",
        "CREATE POLICY customers_bandung ON customers FOR SELECT USING (city = 'Bandung')",
        ("policy_extra", "customers_bandung"),
    ),
    _s(
        "table granted to PUBLIC",
        "GRANT SELECT ON customers TO PUBLIC",
        ("grant_extra", "customers"),
    ),
    _s(
        "privilege revoked from the owner",
        "REVOKE DELETE ON notification_outbox FROM CURRENT_USER",
        ("grant_missing", "notification_outbox"),
    ),
    _s(
        "table given to another owner",
        "ALTER TABLE packages OWNER TO pg_database_owner",
        ("owner_differs", "packages"),
    ),
    # Sequences and types
    _s(
        "sequence no longer owned by its column",
        "ALTER SEQUENCE customer_number_seq OWNED BY NONE",
        ("sequence_owner_differs", "customer_number_seq"),
    ),
    _s(
        "sequence increment changed",
        "ALTER SEQUENCE customer_number_seq INCREMENT BY 10",
        ("sequence_differs", "customer_number_seq"),
    ),
    _s("sequence added by hand", "CREATE SEQUENCE invoice_number_seq", ("sequence_extra", "invoice_number_seq")),
    _s("enum type added by hand", "CREATE TYPE mood AS ENUM ('happy', 'sad')", ("type_extra", "mood")),
    # Extensions (issue 24): pg_trgm gives staff search its trigram index
    _s(
        "extension pg_trgm dropped (and with it the trigram index)",
        "DROP EXTENSION pg_trgm CASCADE",
        ("extension_missing", "pg_trgm"),
        ("index_missing", "customer_registrations_full_name_trgm_idx"),
    ),
    _s(
        "extension pg_trgm at another version",
        (
            "DROP EXTENSION pg_trgm CASCADE",
            "CREATE EXTENSION pg_trgm VERSION '1.5'",
            "CREATE INDEX customer_registrations_full_name_trgm_idx "
            "ON customer_registrations USING gin (full_name gin_trgm_ops)",
        ),
        ("extension_version_differs", "pg_trgm"),
    ),
    _s(
        "an extension no migration creates",
        "CREATE EXTENSION btree_gin",
        ("extension_extra", "btree_gin"),
    ),
)


# The migrations and the code disagree.  The change is shipped as a migration file
# (100_change.sql) and applied, so the live schema is exactly what the migrations
# build: a tool that compares the two sees nothing.  Verify's contract and statement
# registry see what the code will trip over.  The repair is another migration: ``undo``.
@dataclass(frozen=True)
class MigrationScenario:
    name: str
    sql: str
    undo: str
    expect: tuple[tuple[str, str], ...]


_INCIDENT_CHECK = (
    "status IN ('pending_verification', 'verified', 'survey_scheduled', 'survey_completed', 'approved', "
    "'rejected', 'cancelled')"
)
_EIGHT = _INCIDENT_CHECK.replace("'approved',", "'approved', 'customer_created',")
_PREPARE = "statement_does_not_prepare"

MIGRATION_SCENARIOS: tuple[MigrationScenario, ...] = (
    MigrationScenario(
        "a migration drops a column the worker writes",
        "ALTER TABLE customers DROP COLUMN created_by;",
        "ALTER TABLE customers ADD COLUMN created_by text NOT NULL;",
        ((_PREPARE, "chalicelib.customers.repository"),),
    ),
    MigrationScenario(
        "a migration renames a column the code reads",
        "ALTER TABLE registration_otps RENAME COLUMN failed_attempts TO wrong_tries;",
        "ALTER TABLE registration_otps RENAME COLUMN wrong_tries TO failed_attempts;",
        ((_PREPARE, "chalicelib.registrations.repository"),),
    ),
    MigrationScenario(
        "a migration drops the idempotency table",
        "DROP TABLE idempotency_keys;",
        "CREATE TABLE idempotency_keys (scope text NOT NULL, key text NOT NULL, request_sha256 text NOT NULL, "
        "response_status integer NOT NULL, response_body jsonb NOT NULL, "
        "created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (scope, key));\n"
        "CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);",
        ((_PREPARE, "chalicelib.registrations.repository"),),
    ),
    MigrationScenario(
        "a migration makes the outbox payload text",
        "ALTER TABLE notification_outbox ALTER COLUMN payload DROP DEFAULT, "
        "ALTER COLUMN payload TYPE text USING payload::text;",
        "ALTER TABLE notification_outbox ALTER COLUMN payload TYPE jsonb USING payload::jsonb, "
        "ALTER COLUMN payload SET DEFAULT '{}';",
        ((_PREPARE, "chalicelib.notifications.outbox"),),
    ),
    MigrationScenario(
        "a migration drops packages.is_active",
        "ALTER TABLE packages DROP COLUMN is_active;",
        "ALTER TABLE packages ADD COLUMN is_active boolean NOT NULL DEFAULT true;",
        ((_PREPARE, "chalicelib.registrations.repository"),),
    ),
    MigrationScenario(
        "a migration drops registration_otps.codes_sent",
        "ALTER TABLE registration_otps DROP COLUMN codes_sent;",
        "ALTER TABLE registration_otps ADD COLUMN codes_sent integer NOT NULL DEFAULT 1;",
        ((_PREPARE, "chalicelib.registrations.repository"),),
    ),
    MigrationScenario(
        "the incident: a migration's valid_status lacks customer_created",
        f"ALTER TABLE customer_registrations DROP CONSTRAINT valid_status, "
        f"ADD CONSTRAINT valid_status CHECK ({_INCIDENT_CHECK});",
        f"ALTER TABLE customer_registrations DROP CONSTRAINT valid_status, "
        f"ADD CONSTRAINT valid_status CHECK ({_EIGHT});",
        (("check_rejects_value", "valid_status"),),
    ),
    MigrationScenario(
        "a migration's ticket CHECK lacks cancelled",
        "ALTER TABLE installation_tickets DROP CONSTRAINT valid_ticket_status, ADD CONSTRAINT valid_ticket_status "
        "CHECK (status IN ('open', 'scheduled', 'done'));",
        "ALTER TABLE installation_tickets DROP CONSTRAINT valid_ticket_status, ADD CONSTRAINT valid_ticket_status "
        "CHECK (status IN ('open', 'scheduled', 'done', 'cancelled'));",
        (("check_rejects_value", "valid_ticket_status"),),
    ),
    MigrationScenario(
        "a migration's outbox CHECK lacks unknown",
        "ALTER TABLE notification_outbox DROP CONSTRAINT valid_notification_status, ADD CONSTRAINT "
        "valid_notification_status CHECK (status IN ('pending', 'sending', 'sent', 'failed'));",
        "ALTER TABLE notification_outbox DROP CONSTRAINT valid_notification_status, ADD CONSTRAINT "
        "valid_notification_status CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'unknown'));",
        (("check_rejects_value", "valid_notification_status"),),
    ),
    MigrationScenario(
        "a migration's status default is not a status",
        "ALTER TABLE customer_registrations ALTER COLUMN status SET DEFAULT 'new';",
        "ALTER TABLE customer_registrations ALTER COLUMN status SET DEFAULT 'pending_verification';",
        (("default_mismatch", "status"),),
    ),
    MigrationScenario(
        "a migration's active-phone index forgets cancelled",
        "DROP INDEX customer_registrations_active_phone_key;\n"
        "CREATE UNIQUE INDEX customer_registrations_active_phone_key ON customer_registrations (phone) "
        "WHERE status NOT IN ('customer_created', 'rejected');",
        "DROP INDEX customer_registrations_active_phone_key;\n"
        "CREATE UNIQUE INDEX customer_registrations_active_phone_key ON customer_registrations (phone) "
        "WHERE status NOT IN ('customer_created', 'rejected', 'cancelled');",
        (("index_predicate_mismatch", "customer_registrations_active_phone_key"),),
    ),
)
