"""Running migration files: the advisory lock, the history table, one file at a time.

The one place that executes a migration file, for ``apply`` (``runner``), the
gate's apply and the replay that builds the expected schema (``expected``), so a
file runs the same way in all three: in its own transaction together with its
history row, or, marked ``no-transaction``, statement by statement.
"""

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chalicelib.migrate.catalog import HISTORY_TABLE
from chalicelib.migrate.files import MigrationFile, statements
from chalicelib.migrate.report import Drift
from chalicelib.migrate.stored import CREATE_STORE
from chalicelib.platform.settings import Settings

if TYPE_CHECKING:
    import psycopg

# pg_advisory_lock key: the first 8 bytes of sha256(b"registration-backend:migrate").
ADVISORY_LOCK_KEY = 0x5A3C_91D2_0E77_4B18

CREATE_HISTORY = f"""
CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
    name text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    duration_ms double precision NOT NULL,
    applied_by text NOT NULL DEFAULT current_user
)
"""


class MigrationLockTimeoutError(Exception):
    """Another migrate run held the advisory lock for longer than we were willing to wait."""


class InvalidIndexLeftError(Exception):
    """A file run outside a transaction left INVALID indexes (a failed ``CREATE INDEX CONCURRENTLY``)."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


# A failed CONCURRENTLY build leaves its index behind, INVALID; ``IF NOT EXISTS`` on a
# rerun would then skip it and record the file as applied over an index that enforces nothing.
_INVALID_INDEXES = """
SELECT coalesce(array_agg(ic.relname::text ORDER BY ic.relname), '{}')
  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
 WHERE ic.relnamespace = current_schema()::regnamespace AND NOT (i.indisvalid AND i.indisready)
"""


def acquire_lock(conn: "psycopg.Connection[Any]", wait_s: float) -> None:
    """Take the advisory lock, polling up to ``wait_s``; raises ``MigrationLockTimeoutError``."""
    deadline = time.monotonic() + wait_s
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,)).fetchone()
        if row and row[0]:
            return
        if time.monotonic() >= deadline:
            raise MigrationLockTimeoutError(f"another migrate run held the lock for more than {wait_s:.0f} s")
        progress("waiting for another migrate run to finish")
        time.sleep(0.2)


def release_lock(conn: "psycopg.Connection[Any]") -> None:
    conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))


def ensure_history(conn: "psycopg.Connection[Any]") -> None:
    """The history table, and the store of the expected schema (``stored``) beside it, before any file runs."""
    conn.execute(CREATE_HISTORY)
    conn.execute(CREATE_STORE)


def replay(conn: "psycopg.Connection[Any]", files: Sequence[MigrationFile], settings: Settings) -> None:
    """Apply every file, as ``apply`` does, to an empty scratch database (``expected``).

    No lock (the database is this run's alone) and no verify; raises psycopg's
    error from the first file that fails.
    """
    ensure_history(conn)
    for migration in files:
        apply_one(conn, migration, settings)


def apply_one(conn: "psycopg.Connection[Any]", migration: MigrationFile, settings: Settings) -> float:
    """Run one file and record it in the history table; its time in ms."""
    started = time.perf_counter()
    record = f"INSERT INTO {HISTORY_TABLE} (name, checksum, duration_ms) VALUES (%s, %s, %s)"
    timeouts = "SELECT set_config('lock_timeout', %s, {local}), set_config('statement_timeout', %s, {local})"
    if migration.in_transaction:
        with conn.transaction():
            conn.execute(
                timeouts.format(local="true"), (settings.migrate_lock_timeout, settings.migrate_statement_timeout)
            )
            conn.execute(migration.sql.encode())
            elapsed = (time.perf_counter() - started) * 1000
            conn.execute(record, (migration.name, migration.checksum, elapsed))
        return elapsed
    # Statements PostgreSQL refuses in a transaction: each run alone, then the file is recorded.
    conn.execute(timeouts.format(local="false"), (settings.migrate_lock_timeout, settings.migrate_statement_timeout))
    try:
        for statement in statements(migration.sql):
            conn.execute(statement.encode())
    finally:
        conn.execute("RESET lock_timeout; RESET statement_timeout")
    invalid = invalid_indexes(conn)
    if invalid:
        raise InvalidIndexLeftError(invalid)
    elapsed = (time.perf_counter() - started) * 1000
    conn.execute(record, (migration.name, migration.checksum, elapsed))
    return elapsed


def failure_drift(migration: MigrationFile, error: Exception, settings: Settings) -> Drift:
    """A file that failed, named by what it means for the database (nothing of it applied, or why)."""
    diag = getattr(error, "diag", None)
    if isinstance(error, InvalidIndexLeftError):
        return Drift("migration_failed", f"{migration.name} failed: it left an index INVALID", None)
    sqlstate = getattr(error, "sqlstate", None) or ""
    detail = (getattr(diag, "message_primary", None) or str(error)).strip()
    if sqlstate == "55P03":
        cause = (
            f"it waited longer than lock_timeout={settings.migrate_lock_timeout} for a lock another "
            "transaction holds; nothing of it was applied: run apply again when that transaction ends"
        )
    elif sqlstate == "57014":
        cause = f"it ran longer than statement_timeout={settings.migrate_statement_timeout}; nothing of it was applied"
    else:
        cause = f"PostgreSQL said [{sqlstate}] {detail}; nothing of it was applied, and no later file was tried"
    return Drift("migration_failed", f"{migration.name} failed: {cause}", None)


def invalid_indexes(conn: "psycopg.Connection[Any]") -> list[str]:
    row = conn.execute(_INVALID_INDEXES).fetchone()
    return list(row[0]) if row else []


def database_error() -> type[Exception]:
    """psycopg's base error, imported at first use."""
    import psycopg

    return psycopg.Error


def progress(message: str) -> None:
    # Progress goes to stderr: stdout carries only the JSON report.
    print(f"migrate: {message}", file=sys.stderr, flush=True)
