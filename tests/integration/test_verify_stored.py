"""The expected schema stored per set of migrations (chalicelib/migrate/stored.py).

An accepted apply stores what the migrations build; a verify whose key matches
compares against it without replaying (no scratch database: the watch's role needs
no CREATEDB); a row edited by hand is ignored; another set of migrations replays.
"""

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from chalicelib.migrate import run
from chalicelib.migrate.catalog import HISTORY_TABLE
from chalicelib.migrate.stored import STORE_TABLE
from tests.conftest import MIGRATIONS

WATCH_ROLE = "registration_watch"
WATCH_LOGIN = "registration_watch_test"
WATCH_PASSWORD = "watch-login-for-tests-only"

STORED = "the expected schema read from migrate_expected_schema"
TAMPERED = "the stored expected schema failed its checksum"
REPLAYED = "the expected schema replayed"


def _no_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify may not replay the migrations (the only way it creates a scratch database).

    Counting the server's databases instead raced with the other test workers' own."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the migrations were replayed")

    monkeypatch.setattr("chalicelib.migrate.compare.build_expected", refuse)


def _said(report: dict[str, Any], words: str) -> bool:
    return any(line.startswith(words) for line in report["checked"])


def test_an_accepted_apply_stores_the_expected_schema_and_verify_then_replays_nothing(
    migrated_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(migrated_db) as conn:
        rows = conn.execute(f"SELECT count(*) FROM {STORE_TABLE}").fetchone()
    assert rows == (1,)
    _no_replay(monkeypatch)

    report = run("verify", migrated_db, migrations_dir=MIGRATIONS)

    assert report["ok"], report["drift"]
    assert _said(report, STORED), report["checked"]


def test_a_stored_schema_edited_by_hand_is_ignored_and_drift_is_still_caught(migrated_db: str) -> None:
    index = "customer_registrations_phone_created_idx"
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        # Someone drops an index, and hides it by deleting it from the stored expected schema.
        conn.execute(f"DROP INDEX {index}".encode())
        conn.execute(
            f"""UPDATE {STORE_TABLE} SET objects = jsonb_set(objects, '{{indexes}}',
                    (SELECT jsonb_agg(i) FROM jsonb_array_elements(objects->'indexes') i
                      WHERE i->>'name' <> %s))""".encode(),
            (index,),
        )

    report = run("verify", migrated_db, migrations_dir=MIGRATIONS)

    assert _said(report, TAMPERED), report["checked"]
    assert [(d["kind"], index in d["message"]) for d in report["drift"]] == [("index_missing", True)]


def test_another_set_of_migrations_replays_and_an_accepted_apply_stores_it(
    migrated_db: str, migrations_copy: Path
) -> None:
    (migrations_copy / "999_add_packages_note.sql").write_text("ALTER TABLE packages ADD COLUMN note text;\n")

    report = run("apply", migrated_db, migrations_dir=migrations_copy)

    assert report["ok"], report["drift"]
    assert _said(report, REPLAYED), report["checked"]
    again = run("verify", migrated_db, migrations_dir=migrations_copy)
    assert again["ok"], again["drift"]
    assert _said(again, STORED), again["checked"]
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute(f"SELECT count(*) FROM {STORE_TABLE}").fetchone() == (2,)


def test_a_plain_verify_stores_nothing(migrated_db: str) -> None:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(f"DELETE FROM {STORE_TABLE}")

    first = run("verify", migrated_db, migrations_dir=MIGRATIONS)

    assert first["ok"], first["drift"]
    assert _said(first, REPLAYED), first["checked"]
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute(f"SELECT count(*) FROM {STORE_TABLE}").fetchone() == (0,)


@pytest.fixture
def watch_db(migrated_db: str) -> str:
    """``migrated_db`` as the hourly watch reaches it: a login role in registration_watch and nothing more."""
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(
            f"""
            DO $$
            BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{WATCH_LOGIN}') THEN
                    CREATE ROLE {WATCH_LOGIN} LOGIN PASSWORD '{WATCH_PASSWORD}' IN ROLE {WATCH_ROLE};
                END IF;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END
            $$
            """.encode()
        )
    return make_conninfo(migrated_db, user=WATCH_LOGIN, password=WATCH_PASSWORD)


def test_the_watch_role_verifies_clean_without_creating_a_database(
    watch_db: str, migrated_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_replay(monkeypatch)

    report = run("verify", watch_db, migrations_dir=MIGRATIONS)

    assert report["ok"], report["drift"]
    assert _said(report, STORED), report["checked"]
    with psycopg.connect(migrated_db) as conn:
        role = conn.execute(
            "SELECT rolcreatedb, rolcreaterole, rolsuper FROM pg_roles WHERE rolname = %s", (WATCH_ROLE,)
        ).fetchone()
    assert role == (False, False, False)


def test_the_watch_role_still_catches_drift(watch_db: str, migrated_db: str) -> None:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE customer_registrations DROP CONSTRAINT valid_status")

    report = run("verify", watch_db, migrations_dir=MIGRATIONS)

    assert "check_missing" in {d["kind"] for d in report["drift"]}


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE intruder (id int)",
        f"INSERT INTO {HISTORY_TABLE} (name, checksum, duration_ms) VALUES ('999_x.sql', 'x', 0)",
        f"DELETE FROM {STORE_TABLE}",
        "SELECT count(*) FROM customer_registrations",
        "UPDATE packages SET is_active = false",
    ],
)
def test_the_watch_role_reads_the_catalog_and_nothing_more(watch_db: str, statement: str) -> None:
    with psycopg.connect(watch_db, autocommit=True) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement.encode())


def test_the_watch_role_cannot_create_a_database(watch_db: str) -> None:
    name = f"{conninfo_to_dict(watch_db)['dbname']}_x"
    with psycopg.connect(watch_db, autocommit=True) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(f'CREATE DATABASE "{name}"'.encode())


# The package's snapshot (scripts/expected_snapshot.py writes it into the zip at make package).
PACKAGED = "the expected schema read from the package's snapshot"


def _snapshot(url: str, migrations: Path, target: Path) -> Path:
    from chalicelib.migrate.expected import build_snapshot
    from chalicelib.migrate.files import load_migrations
    from chalicelib.platform.settings import Settings

    with psycopg.connect(url, autocommit=True) as conn:
        data = build_snapshot(conn, load_migrations(migrations), Settings())
    target.write_text(json.dumps(data))
    return target


def test_a_release_with_a_new_file_compares_with_the_packaged_snapshot_and_replays_nothing(
    migrated_db: str, migrations_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (migrations_copy / "999_add_packages_note.sql").write_text("ALTER TABLE packages ADD COLUMN note text;\n")
    monkeypatch.setenv("EXPECTED_SCHEMA_SNAPSHOT", str(_snapshot(migrated_db, migrations_copy, tmp_path / "s.json")))
    _no_replay(monkeypatch)

    report = run("apply", migrated_db, migrations_dir=migrations_copy)

    assert report["ok"], report["drift"]
    assert report["applied"] == ["999_add_packages_note.sql"]
    assert _said(report, PACKAGED), report["checked"]
    # Accepted: kept in the table, where the next verify (and the watch) finds it.
    again = run("verify", migrated_db, migrations_dir=migrations_copy)
    assert _said(again, STORED), again["checked"]


def test_drift_is_caught_against_the_packaged_snapshot(
    migrated_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPECTED_SCHEMA_SNAPSHOT", str(_snapshot(migrated_db, MIGRATIONS, tmp_path / "s.json")))
    _no_replay(monkeypatch)
    index = "customer_registrations_phone_created_idx"
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(f"DELETE FROM {STORE_TABLE}")
        conn.execute(f"DROP INDEX {index}".encode())

    report = run("verify", migrated_db, migrations_dir=MIGRATIONS)

    assert _said(report, PACKAGED), report["checked"]
    assert [(d["kind"], index in d["message"]) for d in report["drift"]] == [("index_missing", True)]


def test_a_packaged_snapshot_edited_by_hand_is_ignored_and_replayed(
    migrated_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _snapshot(migrated_db, MIGRATIONS, tmp_path / "s.json")
    data = json.loads(path.read_text())
    index = "customer_registrations_phone_created_idx"
    objects = data["entries"][0]["objects"]
    objects["indexes"] = [i for i in objects["indexes"] if i["name"] != index]  # hides a dropped index
    path.write_text(json.dumps(data))
    monkeypatch.setenv("EXPECTED_SCHEMA_SNAPSHOT", str(path))
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(f"DELETE FROM {STORE_TABLE}")
        conn.execute(f"DROP INDEX {index}".encode())

    report = run("verify", migrated_db, migrations_dir=MIGRATIONS)

    assert _said(report, TAMPERED), report["checked"]
    assert [(d["kind"], index in d["message"]) for d in report["drift"]] == [("index_missing", True)]


def test_a_packaged_snapshot_of_another_major_version_or_other_files_is_not_used(
    migrated_db: str, migrations_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.migrate import stored
    from chalicelib.migrate.files import load_migrations

    path = _snapshot(migrated_db, MIGRATIONS, tmp_path / "s.json")
    data = json.loads(path.read_text())
    with psycopg.connect(migrated_db) as conn:
        version = conn.info.server_version
    other_major = stored.key(load_migrations(MIGRATIONS), version + 10000)
    entry = data["entries"][0]
    entry["key"], entry["checksum"] = other_major, stored.checksum(other_major, entry["objects"])
    path.write_text(json.dumps(data))
    monkeypatch.setenv("EXPECTED_SCHEMA_SNAPSHOT", str(path))
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(f"DELETE FROM {STORE_TABLE}")

    report = run("verify", migrated_db, migrations_dir=MIGRATIONS)

    assert report["ok"], report["drift"]
    assert _said(report, REPLAYED), report["checked"]
