"""plan, apply and verify on one connection.

``apply`` holds a PostgreSQL advisory lock for its whole run, so concurrent runs
(two pipelines, a retried Lambda) apply each file once: the second waits, then
finds nothing pending.  Each file runs in its own transaction together with its
history row, so a file is either applied and recorded or neither.
"""

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chalicelib.migrate.catalog import HISTORY_TABLE, read_catalog
from chalicelib.migrate.files import MigrationFile
from chalicelib.migrate.report import Drift, Report
from chalicelib.migrate.verify import compare_contract, compare_history
from chalicelib.platform.settings import Settings
from chalicelib.schema_contract import EnumColumn

if TYPE_CHECKING:
    import psycopg

# pg_advisory_lock key: the first 8 bytes of sha256(b"registration-backend:migrate").
ADVISORY_LOCK_KEY = 0x5A3C_91D2_0E77_4B18

_CREATE_HISTORY = f"""
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


def plan(conn: "psycopg.Connection[Any]", files: Sequence[MigrationFile], contract: Sequence[EnumColumn]) -> Report:
    """What ``apply`` would do.  Drift only for what would make it refuse (edited or unknown files)."""
    report = Report(action="plan")
    catalog = read_catalog(conn, _tables(contract))
    report.database = {"name": catalog.database, "server_version": catalog.server_version}
    report.catalog_queries = catalog.queries
    report.already_applied, report.pending, drift = compare_history(catalog, files, pending_is_drift=False)
    report.drift = [d for d in drift if d.kind != "history_missing"]
    report.checked.append(f"history of {len(report.already_applied)} applied migrations against {len(files)} files")
    return report


def verify(
    conn: "psycopg.Connection[Any]",
    files: Sequence[MigrationFile],
    contract: Sequence[EnumColumn],
    *,
    action: str = "verify",
) -> Report:
    """The live database against the files and the contract; pending files are drift."""
    report = Report(action=action)
    catalog = read_catalog(conn, _tables(contract))
    report.database = {"name": catalog.database, "server_version": catalog.server_version}
    report.catalog_queries = catalog.queries
    report.already_applied, report.pending, history_drift = compare_history(catalog, files, pending_is_drift=True)
    checked, contract_drift = compare_contract(catalog, contract)
    report.checked = [
        f"history of {len(report.already_applied)} applied migrations against {len(files)} files (sha256)",
        *checked,
    ]
    report.drift = [*history_drift, *contract_drift]
    return report


def apply(
    conn: "psycopg.Connection[Any]",
    files: Sequence[MigrationFile],
    contract: Sequence[EnumColumn],
    settings: Settings,
) -> Report:
    """Apply every pending file in order under the advisory lock, then verify.

    Refuses (applies nothing) when an applied file was edited or is unknown.  Stops
    at the first file that fails; that file leaves neither its changes nor its
    history row.  Raises ``MigrationLockTimeoutError`` if the lock never comes.
    """
    _acquire_lock(conn, settings.migrate_wait_for_lock_s)
    try:
        conn.execute(_CREATE_HISTORY)
        before = plan(conn, files, contract)
        if not before.ok:
            before.action = "apply"
            return before
        applied: list[str] = []
        durations: dict[str, float] = {}
        failure: Drift | None = None
        pending = set(before.pending)
        for migration in (m for m in files if m.name in pending):
            _progress(f"applying {migration.name}")
            try:
                durations[migration.name] = _apply_one(conn, migration, settings)
            except (InvalidIndexLeftError, database_error()) as error:
                failure = _failure_drift(migration, error, settings)
                if not migration.in_transaction:
                    failure = _outside_transaction(conn, migration, failure)
                break
            applied.append(migration.name)
        report = verify(conn, files, contract, action="apply")
        report.applied, report.durations_ms = applied, durations
        report.catalog_queries += before.catalog_queries
        if failure is not None:
            report.drift.insert(0, failure)
        return report
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))


def _apply_one(conn: "psycopg.Connection[Any]", migration: MigrationFile, settings: Settings) -> float:
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
    # A statement PostgreSQL refuses in a transaction: run alone, then record.
    conn.execute(timeouts.format(local="false"), (settings.migrate_lock_timeout, settings.migrate_statement_timeout))
    try:
        conn.execute(migration.sql.encode())
    finally:
        conn.execute("RESET lock_timeout; RESET statement_timeout")
    invalid = _invalid_indexes(conn)
    if invalid:
        raise InvalidIndexLeftError(invalid)
    elapsed = (time.perf_counter() - started) * 1000
    conn.execute(record, (migration.name, migration.checksum, elapsed))
    return elapsed


def _failure_drift(migration: MigrationFile, error: Exception, settings: Settings) -> Drift:
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


def _invalid_indexes(conn: "psycopg.Connection[Any]") -> list[str]:
    row = conn.execute(_INVALID_INDEXES).fetchone()
    return list(row[0]) if row else []


def _outside_transaction(conn: "psycopg.Connection[Any]", migration: MigrationFile, failure: Drift) -> Drift:
    """A no-transaction file keeps what it did before failing: say so, and how to clean up."""
    message = failure.message.replace("; nothing of it was applied", "")
    message += "; it ran outside a transaction, so what it did before failing stays"
    invalid = _invalid_indexes(conn)
    if not invalid:
        return Drift("migration_failed", message, None)
    message += f": INVALID index {', '.join(invalid)} (enforces nothing, costs every write); drop it, then apply again"
    fix = "\n".join(f"DROP INDEX CONCURRENTLY IF EXISTS {name};" for name in invalid)
    return Drift("migration_failed", message, fix)


def _acquire_lock(conn: "psycopg.Connection[Any]", wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,)).fetchone()
        if row and row[0]:
            return
        if time.monotonic() >= deadline:
            raise MigrationLockTimeoutError(f"another migrate run held the lock for more than {wait_s:.0f} s")
        _progress("waiting for another migrate run to finish")
        time.sleep(0.2)


def _tables(contract: Sequence[EnumColumn]) -> list[str]:
    return sorted({column.table for column in contract})


def database_error() -> type[Exception]:
    """psycopg's base error, imported at first use."""
    import psycopg

    return psycopg.Error


def _progress(message: str) -> None:
    # Progress goes to stderr: stdout carries only the JSON report.
    print(f"migrate: {message}", file=sys.stderr, flush=True)
