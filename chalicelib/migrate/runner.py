"""plan, apply and verify on one connection.

``apply`` holds a PostgreSQL advisory lock for its whole run, so concurrent runs
(two pipelines, a retried Lambda) apply each file once: the second waits, then
finds nothing pending.  Each file runs in its own transaction together with its
history row (``execute.apply_one``), so a file is either applied and recorded or
neither.  ``plan`` and ``verify`` are the one comparison (``compare``).
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chalicelib.migrate import execute
from chalicelib.migrate.compare import plan, verify
from chalicelib.migrate.execute import (
    ADVISORY_LOCK_KEY,
    InvalidIndexLeftError,
    MigrationLockTimeoutError,
    database_error,
)
from chalicelib.migrate.files import MigrationFile
from chalicelib.migrate.report import Drift, Report
from chalicelib.platform.settings import Settings
from chalicelib.schema_contract import EnumColumn

if TYPE_CHECKING:
    import psycopg

    from chalicelib.platform.statements import Statement

__all__ = [
    "ADVISORY_LOCK_KEY",
    "MigrationLockTimeoutError",
    "apply",
    "database_error",
    "plan",
    "verify",
]


def apply(
    conn: "psycopg.Connection[Any]",
    files: Sequence[MigrationFile],
    contract: Sequence[EnumColumn],
    settings: Settings,
    statements: "Sequence[Statement] | None" = None,
) -> Report:
    """Apply every pending file in order under the advisory lock, then verify.

    Refuses (applies nothing) when an applied file was edited or is unknown.  Stops
    at the first file that fails; that file leaves neither its changes nor its
    history row.  Raises ``MigrationLockTimeoutError`` if the lock never comes.
    """
    execute.acquire_lock(conn, settings.migrate_wait_for_lock_s)
    try:
        execute.ensure_history(conn)
        return apply_locked(conn, files, contract, settings, statements)
    finally:
        execute.release_lock(conn)


def apply_locked(
    conn: "psycopg.Connection[Any]",
    files: Sequence[MigrationFile],
    contract: Sequence[EnumColumn],
    settings: Settings,
    statements: "Sequence[Statement] | None" = None,
    *,
    before: Report | None = None,
) -> Report:
    """``apply`` for a caller that already holds the lock (the gate); ``before``: its plan, if it has one."""
    before = before or plan(conn, files, contract)
    if not before.ok:
        before.action = "apply"
        return before
    applied: list[str] = []
    durations: dict[str, float] = {}
    failure: Drift | None = None
    pending = set(before.pending)
    for migration in (m for m in files if m.name in pending):
        execute.progress(f"applying {migration.name}")
        try:
            durations[migration.name] = execute.apply_one(conn, migration, settings)
        except (InvalidIndexLeftError, database_error()) as error:
            failure = execute.failure_drift(migration, error, settings)
            if not migration.in_transaction:
                failure = _outside_transaction(conn, migration, failure)
            break
        applied.append(migration.name)
    report = verify(conn, files, contract, action="apply", settings=settings, statements=statements)
    report.applied, report.durations_ms = applied, durations
    report.catalog_queries += before.catalog_queries
    if failure is not None:
        report.drift.insert(0, failure)
    return report


def _outside_transaction(conn: "psycopg.Connection[Any]", migration: MigrationFile, failure: Drift) -> Drift:
    """A no-transaction file keeps what it did before failing: say so, and how to clean up."""
    message = failure.message.replace("; nothing of it was applied", "")
    message += "; it ran outside a transaction, so what it did before failing stays"
    invalid = execute.invalid_indexes(conn)
    if not invalid:
        return Drift("migration_failed", message, None)
    message += f": INVALID index {', '.join(invalid)} (enforces nothing, costs every write); drop it, then apply again"
    fix = "\n".join(f"DROP INDEX CONCURRENTLY IF EXISTS {name};" for name in invalid)
    return Drift("migration_failed", message, fix)
