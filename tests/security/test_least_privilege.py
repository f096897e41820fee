"""Finding 7: every function but ``migrate`` connects as a runtime role that changes rows, never the schema.

The role and its grants come from ``migrations/011_create_runtime_role.sql``; the
API and worker tests connect through it (``runtime_db``), so a missing grant fails
them.  Here: what the role may not do, and that no table was left without grants.
"""

from typing import Any

import psycopg
import pytest

from chalicelib.migrate import run
from chalicelib.migrate.catalog import HISTORY_TABLE
from chalicelib.migrate.rollback import RELEASES_TABLE
from chalicelib.migrate.stored import STORE_TABLE
from tests.conftest import MIGRATIONS, RUNTIME_ROLE


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE intruder (id int)",
        "ALTER TABLE customer_registrations DROP CONSTRAINT valid_status",
        "ALTER TABLE customer_registrations ADD COLUMN intruder text",
        "DROP TABLE idempotency_keys",
        "TRUNCATE customer_registrations CASCADE",
        "CREATE INDEX intruder ON customer_registrations (notes)",
        "CREATE SCHEMA intruder",
        "UPDATE registration_status_history SET actor = 'someone else'",
        "DELETE FROM registration_status_history",
        f"INSERT INTO {HISTORY_TABLE} (name, checksum, duration_ms) VALUES ('999_x.sql', 'x', 0)",
        "CREATE ROLE intruder",
    ],
)
def test_the_runtime_role_cannot_change_the_schema_or_the_audit_trail(runtime_db: str, statement: str) -> None:
    with psycopg.connect(runtime_db, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("registration_app_test",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement.encode())


def test_the_runtime_role_reads_and_writes_rows(runtime_db: str) -> None:
    with psycopg.connect(runtime_db) as conn:
        package = conn.execute(
            "INSERT INTO packages (name, speed_mbps, monthly_price_idr) VALUES ('Role test', 10, 1) RETURNING id"
        ).fetchone()
        assert package is not None
        conn.execute("UPDATE packages SET is_active = false WHERE id = %s", package)
        assert conn.execute("DELETE FROM packages WHERE id = %s", package).rowcount == 1
        conn.rollback()


def test_the_runtime_role_owns_nothing_and_cannot_log_in(migrated_db: str) -> None:
    with psycopg.connect(migrated_db) as conn:
        role = conn.execute(
            "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = %s",
            (RUNTIME_ROLE,),
        ).fetchone()
        owned = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = %s)",
            (RUNTIME_ROLE,),
        ).fetchone()
    assert role == (False, False, False, False, False)
    assert owned == (0,)


def test_every_table_and_sequence_has_its_grants(migrated_db: str) -> None:
    """A new table's migration grants the runtime role what it needs (011 says how); one that forgets fails here."""
    with psycopg.connect(migrated_db) as conn:
        missing = _rows(
            conn,
            """
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> ALL (%s)
               AND NOT (has_table_privilege(%s, c.oid, 'SELECT') AND has_table_privilege(%s, c.oid, 'INSERT'))
            """,
            ([HISTORY_TABLE, RELEASES_TABLE, STORE_TABLE], RUNTIME_ROLE, RUNTIME_ROLE),
        )
        sequences = _rows(
            conn,
            """
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind = 'S'
               AND NOT CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(%s, c.oid, 'USAGE') END
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'i')
            """,
            (RUNTIME_ROLE,),
        )
        history = _rows(
            conn,
            "SELECT privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = %s AND table_name = ANY (%s)",
            (RUNTIME_ROLE, [HISTORY_TABLE, RELEASES_TABLE]),
        )
    assert missing == [], "tables without grants for the runtime role"
    assert sequences == [], "sequences without USAGE for the runtime role (identity columns need none)"
    assert history == [], "the migration history and the accepted releases are migrate's alone"


def test_the_role_migration_runs_again_where_the_role_exists(empty_db: str, migrated_db: str) -> None:
    """Roles are server-wide: a second database (a scratch replay, the suite's many) migrates all the same."""
    report = run("apply", empty_db, migrations_dir=MIGRATIONS)
    assert report["ok"], report
    assert "011_create_runtime_role.sql" in report["applied"]


def _rows(conn: "psycopg.Connection[Any]", sql: str, params: tuple[Any, ...]) -> list[Any]:
    return [row[0] for row in conn.execute(sql.encode(), params).fetchall()]
