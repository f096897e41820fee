"""The release gate: apply a release's migrations only when both releases can live with the result.

During a CloudFormation update the outgoing release keeps serving until the
incoming one's functions are switched, and after a rollback it serves again.  So
before anything is applied, the pending files are *rehearsed* in a transaction
that is rolled back, and the schema they would leave is checked against

- the incoming contract (what this release's code expects: ``compare_contract``,
  plus every column it writes), and
- the outgoing contract (from ``OldResourceProperties``): every value it writes
  into an enum column is still accepted, every table and column it writes still
  exists, and no column it does not name became required (NOT NULL, no
  default).  Only what the pending files *change* counts: a write the
  database already rejects before them is not theirs to fix.

Expand, then contract: a narrowing migration ships one release after the code
that stopped needing what it removes.  Files marked ``no-transaction`` cannot be
rehearsed; rehearsal stops at the first one and the report says which were not.

A database *ahead* of this code (applied files it does not know: a rollback
after a release that applied its migrations) is left alone when it still accepts
everything this code writes.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chalicelib.migrate import execute, runner
from chalicelib.migrate.catalog import read_catalog
from chalicelib.migrate.compare import Expected, Subject, compare, contract_rule, writes_rule
from chalicelib.migrate.files import MigrationFile
from chalicelib.migrate.report import Drift, Report
from chalicelib.migrate.rules import writable_drift
from chalicelib.platform.settings import Settings
from chalicelib.schema_contract import EnumColumn

if TYPE_CHECKING:
    import psycopg

    from chalicelib.platform.statements import Statement

SPLIT = (
    "split the release: ship the code that no longer needs it first, and the migration that narrows "
    "the schema in the next release"
)


@dataclass(frozen=True)
class Contract:
    """What one release's code expects: its enum columns and the columns it writes."""

    enums: tuple[EnumColumn, ...]
    writes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def tables(self) -> set[str]:
        return {column.table for column in self.enums} | set(self.writes)


@dataclass
class GateResult:
    """The report, and what kind of answer it is (``applied``, ``refused``, ``ahead``, ``failed``)."""

    report: Report
    outcome: str
    rehearsed: list[str] = field(default_factory=list)
    not_rehearsed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.report.as_dict(),
            "outcome": self.outcome,
            "rehearsed": self.rehearsed,
            "not_rehearsed": self.not_rehearsed,
        }


def run_gate(
    conn: "psycopg.Connection[Any]",
    files: Sequence[MigrationFile],
    incoming: Contract,
    outgoing: Contract | None,
    settings: Settings,
    statements: "Sequence[Statement] | None" = None,
) -> GateResult:
    """Rehearse, check both contracts, then apply (under the advisory lock) or refuse.

    ``statements``: the registry verify prepares (the code's own by default).
    """
    execute.acquire_lock(conn, settings.migrate_wait_for_lock_s)
    try:
        execute.ensure_history(conn)
        before = runner.plan(conn, files, incoming.enums)
        before.action = "gate"
        if any(d.kind == "migration_unknown" for d in before.drift):
            return _ahead(conn, before, incoming)
        if not before.ok:
            return GateResult(before, "refused")
        tables = sorted(incoming.tables() | (outgoing.tables() if outgoing else set()))
        if not before.pending:
            # Nothing to rehearse, nothing that could narrow the outgoing release: verify.
            report = runner.verify(conn, files, incoming.enums, action="gate", settings=settings, statements=statements)
            report.drift.extend(writable_drift(read_catalog(conn, tables), (), incoming.writes))
            return GateResult(report, "applied" if report.ok else "refused")
        pending = [m for m in files if m.name in set(before.pending)]
        rehearsal = _rehearse(conn, pending, incoming, outgoing, tables, settings)
        if rehearsal.report.drift:
            rehearsal.report.already_applied = before.already_applied
            rehearsal.report.pending = before.pending
            return rehearsal
        report = runner.apply_locked(conn, files, incoming.enums, settings, statements)
        report.drift.extend(writable_drift(read_catalog(conn, tables), (), incoming.writes))
        report.checked = [*rehearsal.report.checked, *report.checked]
        return GateResult(
            report,
            "applied" if report.ok else "failed",
            rehearsal.rehearsed,
            rehearsal.not_rehearsed,
        )
    finally:
        execute.release_lock(conn)


def _rehearse(
    conn: "psycopg.Connection[Any]",
    pending: Sequence[MigrationFile],
    incoming: Contract,
    outgoing: Contract | None,
    tables: list[str],
    settings: Settings,
) -> GateResult:
    report = Report(action="gate")
    result = GateResult(report, "refused")
    live = read_catalog(conn, tables)
    current: MigrationFile | None = None
    required_before = _required_columns(conn, tables)
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(
                "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
                (settings.migrate_lock_timeout, settings.migrate_statement_timeout),
            )
            for index, migration in enumerate(pending):
                if not migration.in_transaction:
                    result.not_rehearsed = [m.name for m in pending[index:]]
                    break
                current = migration
                conn.execute(migration.sql.encode())
                result.rehearsed.append(migration.name)
            rehearsed = read_catalog(conn, tables)
            required_after = _required_columns(conn, tables)
    except execute.database_error() as error:
        if current is None:
            raise
        failure = execute.failure_drift(current, error, settings)
        report.drift.append(Drift(failure.kind, f"rehearsal, rolled back: {failure.message}", None))
        return result
    report.catalog_queries = live.queries + rehearsed.queries
    files = ", ".join(result.rehearsed) or "no pending file"
    report.checked.append(f"rehearsed {files} in a transaction that was rolled back")
    if result.not_rehearsed:
        report.checked.append(
            f"not rehearsed: {', '.join(result.not_rehearsed)} (from a no-transaction file on, which "
            "cannot be rolled back): checked only after they are applied"
        )
    else:
        expected = Expected(contract=incoming.enums, writes=incoming.writes)
        drift = compare(Subject(rehearsed, expected), (contract_rule, writes_rule)).drift
        report.drift.extend(
            Drift(d.kind, f"{d.message} (after the pending files; nothing was applied)", d.fix_sql) for d in drift
        )
        report.checked.append("the rehearsed schema against this release's contract")
    if outgoing is not None:
        already = {d.message for d in writable_drift(live, outgoing.enums, outgoing.writes)}
        narrowed = [d for d in writable_drift(rehearsed, outgoing.enums, outgoing.writes) if d.message not in already]
        narrowed += [
            Drift("column_required", f"inserts into {table} fail: {table}.{column} is NOT NULL without a default", None)
            for table, column in sorted(required_after - required_before)
            if table in outgoing.writes and column not in outgoing.writes[table]
        ]
        report.drift[:0] = [
            Drift(
                "release_must_split",
                f"the release still running would fail: {d.message}, after {files}; {SPLIT}",
                None,
            )
            for d in narrowed
        ]
        report.checked.append("the rehearsed schema against the outgoing release's contract")
    return result


# Columns an INSERT must name: NOT NULL, no default, not identity or generated.
_REQUIRED = """
SELECT r.relname::text, a.attname::text
  FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid
 WHERE r.relnamespace = current_schema()::regnamespace AND r.relname = ANY (%s)
   AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull AND NOT a.atthasdef
   AND a.attidentity = '' AND a.attgenerated = ''
"""


def _required_columns(conn: "psycopg.Connection[Any]", tables: list[str]) -> set[tuple[str, str]]:
    """(table, column) of every column an INSERT into ``tables`` must name (every table a release writes
    is one it inserts into)."""
    return {(row[0], row[1]) for row in conn.execute(_REQUIRED, (tables,)).fetchall()}


def _ahead(conn: "psycopg.Connection[Any]", before: Report, incoming: Contract) -> GateResult:
    """Applied files this code does not know: apply nothing; fine while every write of ours still fits."""
    unknown = [d for d in before.drift if d.kind == "migration_unknown"]
    others = [d for d in before.drift if d.kind != "migration_unknown"]
    report = Report(action="gate", already_applied=before.already_applied, pending=before.pending)
    catalog = read_catalog(conn, sorted(incoming.tables()))
    report.catalog_queries = before.catalog_queries + catalog.queries
    names = ", ".join(d.message.split(" ", 1)[0] for d in unknown)
    report.checked.append(f"the database is ahead of this code (it applied {names}): nothing applied")
    report.checked.append("every value and column this release writes is still accepted")
    report.drift = [*others, *writable_drift(catalog, incoming.enums, incoming.writes)]
    if before.pending:
        report.drift.append(
            Drift(
                "migration_diverged",
                f"{', '.join(before.pending)} of this code are not applied while files it does not know are: "
                "the history diverged from this release's files",
                None,
            )
        )
    return GateResult(report, "ahead" if report.ok else "refused")
