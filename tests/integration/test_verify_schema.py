"""The whole-schema check's machinery: the scratch database, its privilege, concurrency, cleanup, round trips."""

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from chalicelib.migrate import run
from chalicelib.migrate.expected import SCRATCH_PREFIX
from chalicelib.migrate.statements import to_postgres
from chalicelib.migrate.stored import STORE_TABLE
from tests.conftest import MIGRATIONS


def _scratch_databases(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (SCRATCH_PREFIX,))
        return [row[0] for row in rows.fetchall()]


def _mine(url: str) -> list[str]:
    """Scratch databases made for this test's database (other workers verify at the same time)."""
    database = conninfo_to_dict(url)["dbname"]
    return [name for name in _scratch_databases(url) if name.endswith(f"_{database}")]


def test_verify_reports_the_schema_check_and_leaves_no_scratch_database(migrated_db: str) -> None:
    report = run("verify", migrated_db, migrations_dir=MIGRATIONS)
    assert report["ok"], report["drift"]
    assert any(line.startswith("schema against the migrations replayed") for line in report["checked"])
    assert report["verify_ms"]["replay"] > 0
    assert not _mine(migrated_db)


def test_concurrent_verifies_each_use_their_own_scratch_database(migrated_db: str) -> None:
    reports: list[dict[str, Any]] = []
    threads = [
        threading.Thread(target=lambda: reports.append(run("verify", migrated_db, migrations_dir=MIGRATIONS)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r["ok"] for r in reports] == [True, True, True], [r["drift"] for r in reports]
    assert not _mine(migrated_db)


def test_a_replay_that_fails_is_one_drift_and_the_scratch_database_is_dropped(
    migrated_db: str, migrations_copy: Path
) -> None:
    """A file that only ran because of a hand-made table: the migrations alone cannot build the schema."""
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE referral_codes (code text)")
    (migrations_copy / "100_add_referral_code_index.sql").write_text(
        "CREATE INDEX referral_codes_code_idx ON referral_codes (code);\n"
    )
    report = run("apply", migrated_db, migrations_dir=migrations_copy)

    assert report["applied"] == ["100_add_referral_code_index.sql"]
    assert [d["kind"] for d in report["drift"]] == ["expected_schema_unavailable"]
    assert 'relation "referral_codes" does not exist' in report["drift"][0]["message"]
    assert not _mine(migrated_db)


def test_a_scratch_database_left_by_a_killed_run_is_dropped_an_hour_on(migrated_db: str) -> None:
    stale = f"{SCRATCH_PREFIX}{int(time.time()) - 7200}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{stale}"'.encode())
        conn.execute(f"DELETE FROM {STORE_TABLE}".encode())  # so that this verify replays
    assert run("verify", migrated_db, migrations_dir=MIGRATIONS)["ok"]
    assert stale not in _scratch_databases(migrated_db)


def test_without_createdb_verify_says_which_privilege_it_needs(migrated_db: str) -> None:
    role = f"verifier_{uuid.uuid4().hex[:8]}"
    database = conninfo_to_dict(migrated_db)["dbname"]
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN NOCREATEDB".encode())
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}".encode())
        # No expected schema stored for these migrations (another release's): verify must replay.
        conn.execute(f"DELETE FROM {STORE_TABLE}".encode())
    try:
        report = run("verify", make_conninfo(migrated_db, user=role), migrations_dir=MIGRATIONS)
        assert [d["kind"] for d in report["drift"]] == ["expected_schema_unavailable"], report["drift"]
        assert "needs CREATEDB" in report["drift"][0]["message"]
    finally:
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}".encode())
            conn.execute(f'REVOKE ALL ON DATABASE "{database}" FROM {role}'.encode())
            conn.execute(f"DROP ROLE {role}".encode())


@pytest.mark.parametrize(
    ("psycopg_text", "postgres_text"),
    [
        ("SELECT %s, %s", "SELECT $1, $2"),
        ("SELECT %(a)s, %(b)s, %(a)s", "SELECT $1, $2, $1"),
        ("SELECT '%%' || %(a)s", "SELECT '%' || $1"),
    ],
)
def test_placeholders_become_postgres_parameters(psycopg_text: str, postgres_text: str) -> None:
    assert to_postgres(psycopg_text) == postgres_text
