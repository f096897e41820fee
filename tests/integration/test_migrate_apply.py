"""Applying migrations to a real PostgreSQL: order, atomicity, the lock, timeouts."""

import json
import subprocess
import sys
from pathlib import Path

import psycopg

from chalicelib.migrate import run
from chalicelib.platform.settings import Settings
from tests.conftest import MIGRATIONS, ROOT

ALL_FILES = sorted(p.name for p in MIGRATIONS.glob("*.sql"))


def _history(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT name, checksum FROM schema_migrations ORDER BY name").fetchall()


def _table_exists(url: str, name: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
        return bool(row and row[0])


def test_fresh_apply_applies_everything_and_verifies(empty_db: str) -> None:
    report = run("apply", empty_db, migrations_dir=MIGRATIONS)
    assert report["ok"], report["drift"]
    assert report["applied"] == ALL_FILES
    assert report["pending"] == []
    assert set(report["durations_ms"]) == set(ALL_FILES)
    assert [name for name, _ in _history(empty_db)] == ALL_FILES
    # A separate connection sees the schema: the DDL was committed, not left in
    # an open transaction (the incident's second cause).
    assert _table_exists(empty_db, "customer_registrations")


def test_reapply_is_a_no_op(migrated_db: str) -> None:
    before = _history(migrated_db)
    report = run("apply", migrated_db, migrations_dir=MIGRATIONS)
    assert report["ok"]
    assert report["applied"] == []
    assert _history(migrated_db) == before


def test_plan_lists_pending_and_is_ok(empty_db: str) -> None:
    report = run("plan", empty_db, migrations_dir=MIGRATIONS)
    assert report["ok"]
    assert report["pending"] == ALL_FILES
    assert not _table_exists(empty_db, "schema_migrations"), "plan must change nothing"


def test_new_file_is_applied_alone(migrated_db: str, migrations_copy: Path) -> None:
    (migrations_copy / "100_create_audit_notes.sql").write_text("CREATE TABLE audit_notes (note text NOT NULL);\n")
    report = run("apply", migrated_db, migrations_dir=migrations_copy)
    assert report["ok"], report["drift"]
    assert report["applied"] == ["100_create_audit_notes.sql"]


def test_a_file_that_fails_halfway_leaves_nothing_and_stops(migrated_db: str, migrations_copy: Path) -> None:
    (migrations_copy / "100_create_half.sql").write_text("CREATE TABLE half_done (a int);\nSELECT 1 / 0;\n")
    (migrations_copy / "101_create_after.sql").write_text("CREATE TABLE after_failure (a int);\n")
    report = run("apply", migrated_db, migrations_dir=migrations_copy)

    assert not report["ok"]
    failure = report["drift"][0]
    assert failure["kind"] == "migration_failed"
    assert "100_create_half.sql" in failure["message"]
    assert "division by zero" in failure["message"]
    assert report["applied"] == []
    assert report["pending"] == ["100_create_half.sql", "101_create_after.sql"]
    assert not _table_exists(migrated_db, "half_done")
    assert not _table_exists(migrated_db, "after_failure")
    assert "100_create_half.sql" not in dict(_history(migrated_db))


def test_lock_timeout_stops_a_blocked_migration(migrated_db: str, migrations_copy: Path) -> None:
    (migrations_copy / "100_add_note_column.sql").write_text(
        "ALTER TABLE customer_registrations ADD COLUMN note2 text;\n"
    )
    with psycopg.connect(migrated_db) as blocker:
        # A long transaction holding a lock that ALTER TABLE must wait for.
        blocker.execute("SELECT count(*) FROM customer_registrations")
        report = run(
            "apply",
            migrated_db,
            migrations_dir=migrations_copy,
            settings=Settings(migrate_lock_timeout="200ms"),
        )
        blocker.rollback()
    assert not report["ok"]
    assert report["drift"][0]["kind"] == "migration_failed"
    assert "lock_timeout=200ms" in report["drift"][0]["message"]
    assert "100_add_note_column.sql" not in dict(_history(migrated_db))
    # Once the blocker is gone, the same apply goes through.
    assert run("apply", migrated_db, migrations_dir=migrations_copy)["applied"] == ["100_add_note_column.sql"]


def test_no_transaction_file_runs_outside_a_transaction(migrated_db: str, migrations_copy: Path) -> None:
    (migrations_copy / "100_add_city_index.sql").write_text(
        "-- migrate: no-transaction\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS customer_registrations_city_idx ON customer_registrations (city);\n"
    )
    report = run("apply", migrated_db, migrations_dir=migrations_copy)
    assert report["ok"], report["drift"]
    assert report["applied"] == ["100_add_city_index.sql"]
    assert _table_exists(migrated_db, "customer_registrations_city_idx")


def test_three_concurrent_applies_apply_each_file_once(empty_db: str) -> None:
    command = [sys.executable, "-m", "chalicelib.migrate", "apply", "--database-url", empty_db]
    runs = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    reports = [json.loads(process.communicate(timeout=120)[0]) for process in runs]

    assert [process.returncode for process in runs] == [0, 0, 0]
    applied = sorted(name for report in reports for name in report["applied"])
    assert applied == ALL_FILES, "every file applied exactly once across the three runs"
    assert sorted(len(report["applied"]) for report in reports) == [0, 0, len(ALL_FILES)]
    assert [name for name, _ in _history(empty_db)] == ALL_FILES
