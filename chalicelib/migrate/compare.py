"""The one comparison: the live catalog against what the code expects, rule by rule, into one report.

What the code expects (``Expected``) is four things: the migration files (their
history), the enum contract (``chalicelib.schema_contract``), the schema the
files build (replayed: ``expected.build_expected``) and the SQL statements the
code runs (``chalicelib.platform.statements``).  The live side is one ``Catalog``
(``catalog.read_catalog``: one round trip), and the same connection for the two
questions only the live server can answer (does a statement still PREPARE; do
two default expressions mean the same).

Every check is a rule over that one pair, returning what it checked and the
``Drift`` it found; ``compare`` runs the rules it is given in order and says
each cause once.  ``verify`` (the action), ``plan`` (history only) and the
gate's rehearsal (contract and writes over the rehearsed catalog) are all this
one pipeline with another choice of rules.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chalicelib.migrate import rules as contract_rules
from chalicelib.migrate import stored
from chalicelib.migrate.catalog import Catalog, read_catalog
from chalicelib.migrate.expected import ExpectedSchemaError, build_expected
from chalicelib.migrate.files import MigrationFile
from chalicelib.migrate.report import Drift, Report
from chalicelib.migrate.schema import Schema
from chalicelib.migrate.schema_compare import compare_schema
from chalicelib.migrate.statements import check_statements
from chalicelib.platform.settings import Settings
from chalicelib.schema_contract import EnumColumn

if TYPE_CHECKING:
    import psycopg

    from chalicelib.platform.statements import Statement


@dataclass(frozen=True)
class Expected:
    """What the code expects of the database.  A rule whose part is absent checks nothing."""

    files: Sequence[MigrationFile] = ()
    contract: Sequence[EnumColumn] = ()
    schema: Schema | None = None
    statements: "Sequence[Statement]" = ()
    writes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # verify: a pending file is drift; plan and the gate: it is what they are about to apply.
    pending_is_drift: bool = True
    # Why ``schema`` is absent when it should be there (the replay failed): drift of its own.
    schema_unavailable: str | None = None


@dataclass
class Comparison:
    """The one result: what was checked, the drift in report order, and each rule's time."""

    checked: list[str] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Subject:
    """The two sides a rule compares, and the live connection for the questions only it can answer."""

    live: Catalog
    expected: Expected
    conn: "psycopg.Connection[Any] | None" = None


Rule = Callable[[Subject], tuple[list[str], list[Drift]]]


def history_rule(s: Subject) -> tuple[list[str], list[Drift]]:
    applied, _pending, drift = contract_rules.compare_history(
        s.live, s.expected.files, pending_is_drift=s.expected.pending_is_drift
    )
    if not s.expected.pending_is_drift:
        drift = [d for d in drift if d.kind != "history_missing"]
    hashed = " (sha256)" if s.expected.pending_is_drift else ""
    return [f"history of {len(applied)} applied migrations against {len(s.expected.files)} files{hashed}"], drift


def contract_rule(s: Subject) -> tuple[list[str], list[Drift]]:
    return contract_rules.compare_contract(s.live, s.expected.contract)


def writes_rule(s: Subject) -> tuple[list[str], list[Drift]]:
    return [], contract_rules.writable_drift(s.live, (), s.expected.writes)


def schema_rule(s: Subject) -> tuple[list[str], list[Drift]]:
    if s.expected.schema_unavailable is not None:
        return [], [Drift("expected_schema_unavailable", s.expected.schema_unavailable, None)]
    if s.expected.schema is None or s.live.schema is None:
        return [], []
    judge = _Judge(s.conn) if s.conn is not None else _never_same
    return compare_schema(s.live.schema, s.expected.schema, s.expected.contract, judge)


def statements_rule(s: Subject) -> tuple[list[str], list[Drift]]:
    if s.conn is None:
        return [], []
    checked, drift, _cost = check_statements(s.conn, s.expected.statements)
    return checked, drift


# The whole verify, in report order.
VERIFY_RULES: tuple[Rule, ...] = (history_rule, contract_rule, schema_rule, statements_rule)


def compare(subject: Subject, rules: Sequence[Rule]) -> Comparison:
    """Run ``rules`` in order over ``subject``; one cause is said once (see ``_said_once``)."""
    result = Comparison()
    found: list[tuple[Rule, list[Drift]]] = []
    for rule in rules:
        started = time.perf_counter()
        checked, drift = rule(subject)
        result.timings_ms[rule.__name__.removesuffix("_rule")] = _ms_since(started)
        result.checked += checked
        found.append((rule, drift))
    by_rule = dict(found)
    for rule, drift in found:
        if rule is contract_rule and schema_rule in by_rule:
            drift = _said_once(drift, by_rule[schema_rule])
        result.drift += drift
    return result


def verify(
    conn: "psycopg.Connection[Any]",
    files: Sequence[MigrationFile],
    contract: Sequence[EnumColumn],
    *,
    action: str = "verify",
    settings: Settings | None = None,
    statements: "Sequence[Statement] | None" = None,
) -> Report:
    """The live database against the files, the contract, the schema the files build and the statements.

    Pending files are drift.
    """
    from chalicelib.platform.statements import load_all

    settings = settings or Settings()
    report = Report(action=action)
    live = read_catalog(conn, sorted({column.table for column in contract}), whole_schema=True)
    report.database = {"name": live.database, "server_version": live.server_version}
    report.catalog_queries = live.queries
    report.already_applied, report.pending, _ = contract_rules.compare_history(live, files, pending_is_drift=True)
    # What the applied files build: a pending file is drift of its own (migration_pending).
    applied = [m for m in files if m.name in (live.history or {})]
    started = time.perf_counter()
    unavailable = None
    store_key = stored.key(applied, conn.info.server_version)
    schema, verdict = stored.load(conn, store_key)
    if schema is None:  # a release that brings files: the package's snapshot of them, if it has one
        packaged, packaged_verdict = stored.load_packaged(store_key)
        if packaged is not None or verdict == stored.MISSING:
            schema, verdict = packaged, packaged_verdict
    if schema is None:
        try:
            schema = build_expected(conn, applied, settings)
        except ExpectedSchemaError as error:
            unavailable = str(error)
    replay_ms = _ms_since(started)
    expected = Expected(
        files=files,
        contract=contract,
        schema=schema,
        statements=load_all() if statements is None else statements,
        schema_unavailable=unavailable,
    )
    result = compare(Subject(live, expected, conn), VERIFY_RULES)
    report.checked, report.drift = result.checked, result.drift
    report.checked.append(_STORE_SAYS[verdict])
    if verdict != stored.FOUND and schema is not None and action in ("apply", "gate") and report.ok:
        stored.save(conn, store_key, schema)
        report.checked.append("the expected schema stored for the next verify (this release accepted)")
    timings = result.timings_ms
    report.verify_ms = (
        {"statements": timings["statements"]}
        if unavailable
        else {
            "replay": replay_ms,
            "compare": timings["contract"] + timings["schema"],
            "statements": timings["statements"],
        }
    )
    return report


def plan(conn: "psycopg.Connection[Any]", files: Sequence[MigrationFile], contract: Sequence[EnumColumn]) -> Report:
    """What ``apply`` would do.  Drift only for what would make it refuse (edited or unknown files)."""
    report = Report(action="plan")
    live = read_catalog(conn, sorted({column.table for column in contract}))
    report.database = {"name": live.database, "server_version": live.server_version}
    report.catalog_queries = live.queries
    report.already_applied, report.pending, _ = contract_rules.compare_history(live, files, pending_is_drift=False)
    result = compare(Subject(live, Expected(files=files, pending_is_drift=False)), (history_rule,))
    report.checked, report.drift = result.checked, result.drift
    return report


_STORE_SAYS = {
    stored.FOUND: "the expected schema read from migrate_expected_schema (same migrations, same major version): "
    "not replayed",
    stored.PACKAGED: "the expected schema read from the package's snapshot (built at make package on the same "
    "major version, same migrations): not replayed",
    stored.MISSING: "the expected schema replayed: none stored for these migrations on this major version",
    stored.TAMPERED: "the stored expected schema failed its checksum (edited by hand?): ignored, replayed",
}


def _said_once(contract_drift: list[Drift], schema_drift: list[Drift]) -> list[Drift]:
    """A missing table or column is named once, by the schema rule (which carries its fix)."""
    said = {(d.kind, word) for d in schema_drift for word in d.message.replace(":", " ").split()}
    return [
        d
        for d in contract_drift
        if not (d.kind in ("table_missing", "column_missing") and (d.kind, d.message.split()[1].split(".")[-1]) in said)
    ]


def _never_same(_a: str, _b: str, _type_name: str) -> bool:
    return False


class _Judge:
    """Asks the live database whether two expressions of one type mean the same.

    Only for defaults whose text differs (rare: a hand edit).  Each question runs in
    a read-only transaction that is rolled back; an expression that cannot be
    evaluated there (``nextval``, which writes) counts as different.
    """

    def __init__(self, conn: "psycopg.Connection[Any]") -> None:
        self.conn = conn

    def __call__(self, a: str, b: str, type_name: str) -> bool:
        import psycopg

        try:
            with self.conn.transaction(force_rollback=True):
                self.conn.execute("SET TRANSACTION READ ONLY")
                row = self.conn.execute(
                    f"SELECT (({a})::{type_name}) IS NOT DISTINCT FROM (({b})::{type_name})".encode()
                ).fetchone()
        except psycopg.Error:
            return False
        return bool(row and row[0])


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
