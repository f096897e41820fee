"""Migrations that fail halfway, or wait behind a long transaction: history and schema stay consistent,
and the report says what happened.

(A single file failing, the lock_timeout of one ALTER behind a reader, and three
concurrent applies are in ``tests/integration/test_migrate_apply.py``.)
"""

import threading
from pathlib import Path

import psycopg

from chalicelib.migrate import run
from chalicelib.platform.settings import Settings

ALTER = "ALTER TABLE customer_registrations ADD COLUMN referral_code text;\n"


def history(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]


def exists(url: str, regclass: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (regclass,)).fetchone()
    return bool(row and row[0])


def column_exists(url: str, column: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'customer_registrations' AND column_name = %s",
            (column,),
        ).fetchone()
    return bool(row and row[0])


def test_the_second_of_three_files_failing_keeps_the_first_and_nothing_after(
    migrated_db: str, migrations_copy: Path
) -> None:
    before = history(migrated_db)
    (migrations_copy / "100_create_referrals.sql").write_text("CREATE TABLE referrals (code text PRIMARY KEY);\n")
    (migrations_copy / "101_create_half.sql").write_text(
        "CREATE TABLE half_done (a int);\nINSERT INTO half_done VALUES (1);\nINSERT INTO referrals VALUES (NULL);\n"
    )
    (migrations_copy / "102_create_after.sql").write_text("CREATE TABLE after_failure (a int);\n")

    report = run("apply", migrated_db, migrations_dir=migrations_copy)

    assert not report["ok"]
    assert report["applied"] == ["100_create_referrals.sql"]
    assert report["pending"] == ["101_create_half.sql", "102_create_after.sql"]
    failure = report["drift"][0]
    assert failure["kind"] == "migration_failed"
    assert "101_create_half.sql" in failure["message"]
    assert "23502" in failure["message"], "the SQLSTATE of the not-null violation"
    assert {d["kind"] for d in report["drift"][1:]} == {"migration_pending"}
    assert history(migrated_db) == [*before, "100_create_referrals.sql"]
    assert exists(migrated_db, "referrals")
    assert not exists(migrated_db, "half_done"), "the failed file left nothing"
    assert not exists(migrated_db, "after_failure"), "no later file was tried"

    # The file fixed (it was never applied, so it may change): the rest goes through.
    (migrations_copy / "101_create_half.sql").write_text("CREATE TABLE half_done (a int);\n")
    again = run("apply", migrated_db, migrations_dir=migrations_copy)
    assert again["ok"], again["drift"]
    assert again["applied"] == ["101_create_half.sql", "102_create_after.sql"]


def test_a_no_transaction_file_that_fails_halfway_is_reported_with_what_it_left(
    migrated_db: str, migrations_copy: Path
) -> None:
    """CREATE INDEX CONCURRENTLY that fails leaves an INVALID index behind: the report must not say
    "nothing was applied", and a rerun must not record the file as applied over the broken index."""
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE referral_codes (code text)")
        conn.execute("INSERT INTO referral_codes VALUES ('A'), ('A')")
    (migrations_copy / "100_add_referral_code_index.sql").write_text(
        "-- migrate: no-transaction\n"
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS referral_codes_code_idx ON referral_codes (code);\n"
    )
    report = run("apply", migrated_db, migrations_dir=migrations_copy)
    assert not report["ok"]
    failure = report["drift"][0]
    assert failure["kind"] == "migration_failed"
    assert "outside a transaction" in failure["message"]
    assert "nothing of it was applied" not in failure["message"]
    assert "100_add_referral_code_index.sql" not in history(migrated_db)
    assert "INVALID index referral_codes_code_idx" in failure["message"]
    assert failure["fix_sql"] == "DROP INDEX CONCURRENTLY IF EXISTS referral_codes_code_idx;"

    # A rerun must not skip the broken index (IF NOT EXISTS) and record the file as applied.
    rerun = run("apply", migrated_db, migrations_dir=migrations_copy)
    assert not rerun["ok"]
    assert "INVALID index referral_codes_code_idx" in rerun["drift"][0]["message"]
    assert "100_add_referral_code_index.sql" not in history(migrated_db)

    # Following the report: drop the index, fix the data, apply again.
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(failure["fix_sql"])
        conn.execute("DELETE FROM referral_codes WHERE ctid <> (SELECT min(ctid) FROM referral_codes)")
    fixed = run("apply", migrated_db, migrations_dir=migrations_copy)
    assert fixed["ok"], fixed["drift"]
    assert fixed["applied"] == ["100_add_referral_code_index.sql"]


def test_a_migration_behind_a_long_transaction_gives_up_and_leaves_writers_unblocked(
    migrated_db: str, migrations_copy: Path
) -> None:
    """A long transaction holds a row lock; the ALTER waits at most lock_timeout, and meanwhile a writer queued
    behind the ALTER gets through as soon as the ALTER gives up (not after the long transaction ends)."""
    before = history(migrated_db)
    (migrations_copy / "100_add_referral_code.sql").write_text(ALTER)
    with psycopg.connect(migrated_db) as long_tx, psycopg.connect(migrated_db, autocommit=True) as writer:
        long_tx.execute("UPDATE packages SET name = name")  # no change, but a lock a full ALTER must wait for
        long_tx.execute("SELECT count(*) FROM customer_registrations")
        writer_done = threading.Event()

        def write_while_blocked() -> None:
            # Queued behind the ALTER's lock request while it waits: released when the ALTER gives up.
            writer.execute("SELECT pg_sleep(0.2)")
            writer.execute("SELECT count(*) FROM customer_registrations")
            writer_done.set()

        thread = threading.Thread(target=write_while_blocked)
        thread.start()
        report = run("apply", migrated_db, migrations_dir=migrations_copy, settings=Settings(migrate_lock_timeout="1s"))
        thread.join(timeout=30)
        assert writer_done.is_set(), "the writer finished while the long transaction was still open"
        assert not long_tx.closed
        long_tx.rollback()

    assert not report["ok"]
    assert report["drift"][0]["kind"] == "migration_failed"
    assert "lock_timeout=1s" in report["drift"][0]["message"]
    assert "run apply again" in report["drift"][0]["message"]
    assert history(migrated_db) == before
    assert not column_exists(migrated_db, "referral_code")
    assert run("apply", migrated_db, migrations_dir=migrations_copy)["applied"] == ["100_add_referral_code.sql"]


def test_another_run_holding_the_advisory_lock_is_a_lock_timeout_report(
    migrated_db: str, migrations_copy: Path
) -> None:
    from chalicelib.migrate.runner import ADVISORY_LOCK_KEY

    (migrations_copy / "100_add_referral_code.sql").write_text(ALTER)
    with psycopg.connect(migrated_db, autocommit=True) as other_run:
        other_run.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        report = run(
            "apply", migrated_db, migrations_dir=migrations_copy, settings=Settings(migrate_wait_for_lock_s=0.5)
        )
    assert not report["ok"]
    assert [d["kind"] for d in report["drift"]] == ["lock_timeout"]
    assert "another migrate run" in report["drift"][0]["message"]
    assert not column_exists(migrated_db, "referral_code")
    assert "100_add_referral_code.sql" not in history(migrated_db)
