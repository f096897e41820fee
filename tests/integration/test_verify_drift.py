"""verify against a live database that drifted: the incident both ways, and every other drift it names.

Each drift test also runs the report's ``fix_sql`` and checks that verify is then
clean, so the repair the report prints is proven, not only suggested.
"""

import re
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chalicelib.migrate import run
from chalicelib.schema_contract import CONTRACT, EnumColumn
from chalicelib.statuses import RegistrationStatus
from tests.conftest import MIGRATIONS

SEVEN_STATUSES = (
    "'pending_verification', 'verified', 'survey_scheduled', 'survey_completed', 'approved', 'rejected', 'cancelled'"
)
EIGHT_STATUSES = SEVEN_STATUSES.replace("'approved',", "'approved', 'customer_created',")

# The incident's fix, exactly as it was run (incident-registration-constraint.md).
INCIDENT_FIX = f"""
ALTER TABLE customer_registrations DROP CONSTRAINT IF EXISTS valid_status;
ALTER TABLE customer_registrations ADD CONSTRAINT valid_status CHECK (status IN ({EIGHT_STATUSES}));
"""


def _sql(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement.encode())


def _swap_valid_status(url: str, definition: str) -> None:
    """Replace valid_status, in one committed statement, by ``CHECK <definition>``."""
    _sql(
        url,
        f"ALTER TABLE customer_registrations DROP CONSTRAINT valid_status, ADD CONSTRAINT valid_status {definition}",
    )


def _verify(url: str, **kwargs: Any) -> dict[str, Any]:
    return run("verify", url, migrations_dir=kwargs.pop("migrations_dir", MIGRATIONS), **kwargs)


def _kinds(report: dict[str, Any]) -> list[str]:
    return [drift["kind"] for drift in report["drift"]]


def _apply_fixes(url: str, report: dict[str, Any]) -> None:
    """Run each drift's fix_sql one statement at a time (CONCURRENTLY refuses a transaction)."""
    for drift in report["drift"]:
        if not drift["fix_sql"]:
            continue
        for statement in re.split(r";\s*\n", drift["fix_sql"]):
            statement = "\n".join(line for line in statement.splitlines() if not line.startswith("--")).strip()
            if statement:
                _sql(url, statement.rstrip(";"))


def _insert_registration(url: str, status: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        package = conn.execute(
            "INSERT INTO packages (name, speed_mbps, monthly_price_idr) VALUES (%s, 30, 250000) RETURNING id",
            (f"Home 30 {uuid.uuid4().hex[:8]}",),
        ).fetchone()
        assert package is not None
        conn.execute(
            "INSERT INTO customer_registrations (full_name, email, phone, address, city, package_id, status) "
            "VALUES ('Test', 'test@test.com', '+628123456789', 'Jl. Test 1', 'Bandung', %s, %s)",
            (package[0], status),
        )


def _legacy_database(url: str) -> None:
    """The production database before the incident: a status CHECK without customer_created, under another name."""
    _sql(
        url,
        "ALTER TABLE customer_registrations DROP CONSTRAINT valid_status, "
        f"ADD CONSTRAINT customer_registrations_status_check CHECK (status IN ({SEVEN_STATUSES}))",
    )


def test_a_freshly_migrated_database_verifies_clean(migrated_db: str) -> None:
    report = _verify(migrated_db)
    assert report["ok"], report["drift"]
    assert report["catalog_queries"] == 1
    # history, the contract, the whole schema, the statements, where the expected schema came from
    assert len(report["checked"]) == 4 + len(CONTRACT)


def test_incident_way_one_drop_if_exists_misses_a_differently_named_constraint(
    migrated_db: str, migrations_copy: Path
) -> None:
    _legacy_database(migrated_db)
    (migrations_copy / "100_fix_customer_created_constraint.sql").write_text(INCIDENT_FIX)

    report = run("apply", migrated_db, migrations_dir=migrations_copy)

    # The file applied without error, as it did in production, and apply still fails.
    assert report["applied"] == ["100_fix_customer_created_constraint.sql"]
    assert not report["ok"]
    rejects = [d for d in report["drift"] if d["kind"] == "check_rejects_value"]
    assert [d["message"].split(":")[0] for d in rejects] == ["customer_registrations rejects status 'customer_created'"]
    assert "customer_registrations_status_check" in rejects[0]["message"]
    assert "check_extra" in _kinds(report)
    # The effect is real: the database refuses the write the code will make.
    with pytest.raises(psycopg.errors.CheckViolation, match="customer_registrations_status_check"):
        _insert_registration(migrated_db, "customer_created")

    _apply_fixes(migrated_db, report)
    assert _verify(migrated_db, migrations_dir=migrations_copy)["ok"]
    _insert_registration(migrated_db, "customer_created")


def test_incident_way_two_ddl_on_a_connection_never_committed(migrated_db: str) -> None:
    _swap_valid_status(migrated_db, f"CHECK (status IN ({SEVEN_STATUSES}))")
    # A hand-run fix on a default psycopg connection: the ALTER opens a
    # transaction that nothing commits, and closing the connection rolls it back.
    conn = psycopg.connect(migrated_db)
    conn.execute(
        f"ALTER TABLE customer_registrations DROP CONSTRAINT valid_status, "
        f"ADD CONSTRAINT valid_status CHECK (status IN ({EIGHT_STATUSES}))".encode()
    )
    conn.close()

    report = _verify(migrated_db)
    assert _kinds(report) == ["check_rejects_value"]
    assert report["drift"][0]["message"] == (
        "customer_registrations rejects status 'customer_created': valid_status does not allow it"
    )
    _apply_fixes(migrated_db, report)
    assert _verify(migrated_db)["ok"]


def test_not_valid_constraint_is_drift_until_validated(migrated_db: str) -> None:
    _swap_valid_status(migrated_db, f"CHECK (status IN ({EIGHT_STATUSES})) NOT VALID")
    report = _verify(migrated_db)
    assert _kinds(report) == ["check_not_validated"]
    assert report["drift"][0]["fix_sql"] == "ALTER TABLE customer_registrations VALIDATE CONSTRAINT valid_status;"
    _apply_fixes(migrated_db, report)
    assert _verify(migrated_db)["ok"]


def test_not_enforced_constraint_is_drift(migrated_db: str, server_version: int) -> None:
    if server_version < 180000:
        pytest.skip("NOT ENFORCED CHECK constraints arrived in PostgreSQL 18")
    _swap_valid_status(migrated_db, f"CHECK (status IN ({EIGHT_STATUSES})) NOT ENFORCED")
    report = _verify(migrated_db)
    assert "check_not_enforced" in _kinds(report)
    _apply_fixes(migrated_db, report)
    assert _verify(migrated_db)["ok"]


def test_a_constraint_allowing_a_status_the_code_lacks(migrated_db: str) -> None:
    _swap_valid_status(migrated_db, f"CHECK (status IN ({EIGHT_STATUSES}, 'on_hold'))")
    report = _verify(migrated_db)
    assert _kinds(report) == ["check_allows_unknown"]
    assert "'on_hold'" in report["drift"][0]["message"]


def test_missing_constraint(migrated_db: str) -> None:
    _sql(migrated_db, "ALTER TABLE customer_registrations DROP CONSTRAINT valid_status")
    report = _verify(migrated_db)
    assert _kinds(report) == ["check_missing"]
    assert report["drift"][0]["message"] == (
        "customer_registrations accepts any status: there is no CHECK constraint valid_status"
    )
    _apply_fixes(migrated_db, report)
    assert _verify(migrated_db)["ok"]


def test_constraint_beyond_the_reader_is_unverifiable_not_fine(migrated_db: str) -> None:
    _swap_valid_status(migrated_db, f"CHECK (lower(status) IN ({EIGHT_STATUSES}))")
    report = _verify(migrated_db)
    assert _kinds(report) == ["check_unverifiable"]
    _apply_fixes(migrated_db, report)
    assert _verify(migrated_db)["ok"]


def test_wrong_column_default(migrated_db: str) -> None:
    _sql(migrated_db, "ALTER TABLE customer_registrations ALTER COLUMN status SET DEFAULT 'verified'")
    report = _verify(migrated_db)
    assert _kinds(report) == ["default_mismatch"]
    _apply_fixes(migrated_db, report)
    assert _verify(migrated_db)["ok"]


def test_partial_unique_index_predicate_that_lost_statuses(migrated_db: str) -> None:
    _sql(migrated_db, "DROP INDEX customer_registrations_active_phone_key")
    _sql(
        migrated_db,
        "CREATE UNIQUE INDEX customer_registrations_active_phone_key ON customer_registrations (phone) "
        "WHERE status IN ('pending_verification', 'verified', 'customer_created')",
    )
    report = _verify(migrated_db)
    assert _kinds(report) == ["index_predicate_mismatch", "index_predicate_mismatch"]
    missed, extra = (d["message"] for d in report["drift"])
    assert "'survey_scheduled', 'survey_completed', 'approved' escape the rule" in missed
    assert "'customer_created' are held to the rule" in extra
    _apply_fixes(migrated_db, report)
    assert _verify(migrated_db)["ok"]


def test_missing_partial_index(migrated_db: str) -> None:
    _sql(migrated_db, "DROP INDEX customer_registrations_active_email_key")
    assert _kinds(_verify(migrated_db)) == ["index_missing"]


def test_edited_migration_is_drift_and_apply_refuses(migrated_db: str, migrations_copy: Path) -> None:
    edited = migrations_copy / "002_create_customer_registrations.sql"
    edited.write_text(edited.read_text() + "\n-- an afterthought\n")
    report = _verify(migrated_db, migrations_dir=migrations_copy)
    assert _kinds(report) == ["migration_checksum_mismatch"]
    assert "002_create_customer_registrations.sql was edited after it was applied" in report["drift"][0]["message"]

    (migrations_copy / "100_create_later.sql").write_text("CREATE TABLE later (a int);\n")
    refused = run("apply", migrated_db, migrations_dir=migrations_copy)
    assert not refused["ok"]
    assert refused["applied"] == []
    assert refused["pending"] == ["100_create_later.sql"]


def test_history_row_without_a_file(migrated_db: str) -> None:
    _sql(
        migrated_db,
        "INSERT INTO schema_migrations (name, checksum, duration_ms) VALUES ('100_from_the_future.sql', 'x', 1)",
    )
    report = _verify(migrated_db)
    assert _kinds(report) == ["migration_unknown"]
    refused = run("apply", migrated_db, migrations_dir=MIGRATIONS)
    assert not refused["ok"]
    assert _kinds(refused) == ["migration_unknown"]


def test_pending_migration_is_drift_for_verify_but_not_for_plan(migrated_db: str, migrations_copy: Path) -> None:
    (migrations_copy / "100_create_later.sql").write_text("CREATE TABLE later (a int);\n")
    assert _kinds(_verify(migrated_db, migrations_dir=migrations_copy)) == ["migration_pending"]
    assert run("plan", migrated_db, migrations_dir=migrations_copy)["ok"]


def test_never_migrated_database(empty_db: str) -> None:
    report = _verify(empty_db)
    assert not report["ok"]
    assert "history_missing" in _kinds(report)
    assert "table_missing" in _kinds(report)


def test_a_status_added_to_the_code_without_a_migration_fails(migrated_db: str) -> None:
    """The CI-time guard: the enum grows, the migrations do not, verify says which writes would fail."""
    grown = StrEnum(  # type: ignore[misc]
        "RegistrationStatus", [(s.name, s.value) for s in RegistrationStatus] + [("ON_HOLD", "on_hold")]
    )
    contract = [
        EnumColumn(c.table, c.column, grown, c.constraint, c.default, c.indexes) if c.enum is RegistrationStatus else c
        for c in CONTRACT
    ]
    report = _verify(migrated_db, contract=contract)
    messages = [d["message"] for d in report["drift"] if d["kind"] == "check_rejects_value"]
    assert messages == [
        "customer_registrations rejects status 'on_hold': valid_status does not allow it",
        "registration_status_history rejects from_status 'on_hold': valid_from_status does not allow it",
        "registration_status_history rejects to_status 'on_hold': valid_to_status does not allow it",
    ]


def test_the_contract_reads_a_varchar_column_too(migrated_db: str, migrations_copy: Path) -> None:
    """One line of contract guards a new column, whatever its text type."""

    class Colour(StrEnum):
        RED = "red"
        GREEN = "green"

    (migrations_copy / "100_create_lamps.sql").write_text(
        "CREATE TABLE lamps (colour varchar(10) NOT NULL DEFAULT 'red' "
        "CONSTRAINT valid_colour CHECK (colour IN ('red', 'green')));\n"
    )
    contract = [EnumColumn("lamps", "colour", Colour, "valid_colour", default="red")]
    assert run("apply", migrated_db, migrations_dir=migrations_copy, contract=contract)["ok"]

    _sql(
        migrated_db,
        "ALTER TABLE lamps DROP CONSTRAINT valid_colour, ADD CONSTRAINT valid_colour CHECK (colour = 'red')",
    )
    report = run("verify", migrated_db, migrations_dir=migrations_copy, contract=contract)
    assert [d["message"] for d in report["drift"]] == ["lamps rejects colour 'green': valid_colour does not allow it"]
