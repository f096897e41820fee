"""The rules over one catalog: the history, the enum contract, a release's writes.

Each rule reads a ``Catalog`` (live, or rehearsed by the gate) and returns drift:
the migration history against the files (checksums, unknown versions, pending
files), the schema contract (``chalicelib.schema_contract``: each enum column's
CHECK, default and partial index predicates, judged by evaluating them), and what
one release writes (``writable_drift``, for the gate's two contracts).  They are
steps of the one comparison (``compare``), beside the whole-schema rule
(``schema_compare``) and the statements (``statements``), not a verifier of their
own.  Each ``Drift`` says its effect first, in the words of what would fail, then
its cause, then the SQL that would repair it.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.migrate.catalog import HISTORY_TABLE, Catalog
from chalicelib.migrate.files import MigrationFile
from chalicelib.migrate.predicate import (
    ParsedPredicate,
    UnsupportedPredicateError,
    parse_predicate,
    strip_constraint_definition,
)
from chalicelib.migrate.report import Drift
from chalicelib.schema_contract import EnumColumn, IndexPredicate

# A value no enum has: a constraint that accepts it accepts anything.
_STRANGER = "\x00not-a-status"


def compare_history(
    catalog: Catalog, files: Sequence[MigrationFile], *, pending_is_drift: bool
) -> tuple[list[str], list[str], list[Drift]]:
    """(applied names, pending names, drift) for the history table against the files."""
    history = catalog.history or {}
    by_name = {migration.name: migration for migration in files}
    drift: list[Drift] = []
    if catalog.history is None:
        drift.append(
            Drift(
                "history_missing",
                f"no migration has been applied to {catalog.database}: there is no {HISTORY_TABLE} table",
                None,
            )
        )
    for name, checksum in sorted(history.items()):
        migration = by_name.get(name)
        if migration is None:
            drift.append(
                Drift(
                    "migration_unknown",
                    f"{name} is recorded as applied but this code has no such file: the database was "
                    "migrated by other code (a newer release, or a file renamed or deleted)",
                    None,
                )
            )
        elif migration.checksum != checksum:
            drift.append(
                Drift(
                    "migration_checksum_mismatch",
                    f"{name} was edited after it was applied: the database ran the version with sha256 "
                    f"{checksum[:12]}…, the file now has {migration.checksum[:12]}…; restore the file and "
                    "put the change in a new migration",
                    None,
                )
            )
    pending = [m.name for m in files if m.name not in history]
    if pending_is_drift:
        drift.extend(
            Drift("migration_pending", f"{name} is not applied: the database lacks what it creates", None)
            for name in pending
        )
    return sorted(history), pending, drift


def compare_contract(catalog: Catalog, contract: Iterable[EnumColumn]) -> tuple[list[str], list[Drift]]:
    """(what was checked, drift) for each enum-guarded column of the contract."""
    checked: list[str] = []
    drift: list[Drift] = []
    tables = {column["table"] for column in catalog.columns}
    for expected in contract:
        where = f"{expected.table}.{expected.column}"
        if expected.table not in tables:
            drift.append(Drift("table_missing", f"table {expected.table} does not exist", None))
            continue
        live_column = _find(catalog.columns, table=expected.table, column=expected.column)
        if live_column is None:
            drift.append(Drift("column_missing", f"column {where} does not exist", None))
            continue
        drift.extend(_check_constraints(catalog, expected))
        drift.extend(_check_default(expected, live_column))
        for index in expected.indexes:
            drift.extend(_check_index(catalog, expected, index))
        drift.extend(_check_other_indexes(catalog, expected))
        checked.append(
            f"{where}: {expected.constraint} allows exactly {expected.enum.__name__} ({len(expected.values)} values)"
            + (f", default {expected.default!r}" if expected.default else "")
            + "".join(f", {index.name} selects {len(index.selects)} of them" for index in expected.indexes)
        )
    return checked, drift


@dataclass(frozen=True)
class _LiveCheck:
    name: str
    parsed: ParsedPredicate
    validated: bool
    enforced: bool


def _check_constraints(catalog: Catalog, expected: EnumColumn) -> list[Drift]:
    table, column = expected.table, expected.column
    drift: list[Drift] = []
    live: list[_LiveCheck] = []
    found_named = False
    for check in catalog.checks:
        if check["table"] != table or check["columns"] != [column]:
            if check["table"] == table and check["name"] == expected.constraint:
                drift.append(_unverifiable(expected, check["name"], check["definition"], "it names other columns"))
                found_named = True
            continue
        found_named = found_named or check["name"] == expected.constraint
        try:
            parsed = parse_predicate(strip_constraint_definition(check["definition"]), column)
        except UnsupportedPredicateError as error:
            drift.append(_unverifiable(expected, check["name"], check["definition"], str(error)))
            continue
        live.append(_LiveCheck(check["name"], parsed, check["validated"], check["enforced"]))

    if not found_named:
        drift.append(
            Drift(
                "check_missing",
                f"{table} accepts any {column}: there is no CHECK constraint {expected.constraint}",
                _replace_constraint_sql(expected, []),
            )
        )
    for value in expected.values:
        rejecting = [c.name for c in live if c.enforced and c.parsed.evaluate(value) is False]
        if rejecting:
            drift.append(
                Drift(
                    "check_rejects_value",
                    f"{table} rejects {column} {value!r}: " + _cause(expected, rejecting),
                    _replace_constraint_sql(expected, [c.name for c in live if c.name != expected.constraint]),
                )
            )
    for live_check in live:
        drift.extend(_check_one_constraint(expected, live_check))
    return drift


def _check_one_constraint(expected: EnumColumn, check: _LiveCheck) -> list[Drift]:
    table, column = expected.table, expected.column
    drift: list[Drift] = []
    if check.name != expected.constraint:
        drift.append(
            Drift(
                "check_extra",
                f"{table}.{column} has a second CHECK constraint, {check.name}, beside {expected.constraint}: "
                f"a change to {expected.constraint} alone (e.g. DROP CONSTRAINT IF EXISTS "
                f"{expected.constraint}) leaves it in force",
                f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {check.name};",
            )
        )
        return drift
    unknown = sorted(
        value
        for value in check.parsed.literals | {_STRANGER}
        if value not in expected.values and check.parsed.evaluate(value) is not False
    )
    if _STRANGER in unknown:
        drift.append(
            Drift(
                "check_allows_unknown",
                f"{table} accepts any {column}: {expected.constraint} does not limit it to {expected.enum.__name__}",
                _replace_constraint_sql(expected, []),
            )
        )
    elif unknown:
        drift.append(
            Drift(
                "check_allows_unknown",
                f"{table} accepts {column} {', '.join(map(repr, unknown))}, which {expected.enum.__name__} "
                f"does not have: {expected.constraint} still allows it",
                _replace_constraint_sql(expected, []),
            )
        )
    if not check.enforced:
        drift.append(
            Drift(
                "check_not_enforced",
                f"{table} accepts any {column}: {expected.constraint} is NOT ENFORCED",
                _replace_constraint_sql(expected, []),
            )
        )
    elif not check.validated:
        drift.append(
            Drift(
                "check_not_validated",
                f"rows already in {table} may hold a {column} outside {expected.enum.__name__}: "
                f"{expected.constraint} is NOT VALID (it checks new rows only)",
                f"ALTER TABLE {table} VALIDATE CONSTRAINT {expected.constraint};",
            )
        )
    return drift


def _cause(expected: EnumColumn, rejecting: list[str]) -> str:
    parts = []
    for name in rejecting:
        if name == expected.constraint:
            parts.append(f"{name} does not allow it")
        else:
            parts.append(f"{name}, a second CHECK constraint beside {expected.constraint}, does not allow it")
    return "; ".join(parts)


def _unverifiable(expected: EnumColumn, name: str, definition: str, why: str) -> Drift:
    return Drift(
        "check_unverifiable",
        f"cannot prove {expected.table} accepts every {expected.enum.__name__}: {name} is "
        f"{definition!r} ({why}); write it as {expected.check_sql()}",
        _replace_constraint_sql(expected, [] if name == expected.constraint else [name]),
    )


def _replace_constraint_sql(expected: EnumColumn, also_drop: Iterable[str]) -> str:
    """The two-step fix: swap the constraint in one statement (never unguarded), validate in another."""
    drops = "".join(f"DROP CONSTRAINT IF EXISTS {name}, " for name in also_drop)
    return (
        f"ALTER TABLE {expected.table} {drops}DROP CONSTRAINT IF EXISTS {expected.constraint}, "
        f"ADD CONSTRAINT {expected.constraint} CHECK ({expected.check_sql()}) NOT VALID;\n"
        f"-- then, in a separate transaction (the next migration file):\n"
        f"ALTER TABLE {expected.table} VALIDATE CONSTRAINT {expected.constraint};"
    )


def _check_default(expected: EnumColumn, live_column: dict[str, Any]) -> list[Drift]:
    table, column = expected.table, expected.column
    live_default = live_column["default"]
    if live_default is None and expected.default is None:
        return []
    literal = _default_literal(live_default, column)
    if literal == expected.default or (expected.default is None and literal in expected.values):
        return []
    if expected.default is None:
        message = f"{table} fills a missing {column} with {live_default}, which {expected.enum.__name__} does not have"
        fix = f"ALTER TABLE {table} ALTER COLUMN {column} DROP DEFAULT;"
    else:
        message = (
            f"a {table} row inserted without {column} gets {live_default or 'NULL'}, not {expected.default!r}: "
            "the column default differs from the code's"
        )
        fix = f"ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT '{expected.default}';"
    return [Drift("default_mismatch", message, fix)]


def _default_literal(expression: str | None, column: str) -> str | None:
    if expression is None:
        return None
    try:
        parsed = parse_predicate(f"{column} = {expression}", column)
    except UnsupportedPredicateError:
        return None
    return next(iter(parsed.literals)) if len(parsed.literals) == 1 else None


def _check_index(catalog: Catalog, expected: EnumColumn, index: IndexPredicate) -> list[Drift]:
    live = _find(catalog.indexes, table=expected.table, name=index.name)
    fix = _rebuild_index_sql(expected, index, live)
    if live is None:
        return [Drift("index_missing", f"the rule of index {index.name} is not enforced: it does not exist", fix)]
    drift: list[Drift] = []
    if not live["valid"]:
        drift.append(
            Drift(
                "index_invalid",
                f"the rule of index {index.name} is not enforced: the index is INVALID (a failed CONCURRENTLY build)",
                fix,
            )
        )
    if live["predicate"] is None:
        return [
            *drift,
            Drift("index_predicate_mismatch", f"{index.name} covers every row: it has no WHERE clause", fix),
        ]
    try:
        parsed = parse_predicate(live["predicate"], expected.column)
    except UnsupportedPredicateError as error:
        return [*drift, Drift("index_predicate_unverifiable", f"cannot read {index.name}'s predicate ({error})", fix)]
    missed = [v for v in expected.values if v in index.selects and parsed.evaluate(v) is not True]
    extra = [v for v in expected.values if v not in index.selects and parsed.evaluate(v) is True]
    if missed:
        drift.append(
            Drift(
                "index_predicate_mismatch",
                f"{expected.table} rows with {expected.column} {', '.join(map(repr, missed))} escape the rule of "
                f"{index.name}: its predicate ({live['predicate']}) leaves them out",
                fix,
            )
        )
    if extra:
        drift.append(
            Drift(
                "index_predicate_mismatch",
                f"{expected.table} rows with {expected.column} {', '.join(map(repr, extra))} are held to the rule of "
                f"{index.name} although they should not be: its predicate ({live['predicate']}) takes them in",
                fix,
            )
        )
    return drift


def _check_other_indexes(catalog: Catalog, expected: EnumColumn) -> list[Drift]:
    """Indexes the contract does not name, whose predicate spells a value the enum lacks."""
    named = {index.name for index in expected.indexes}
    drift: list[Drift] = []
    for live in catalog.indexes:
        if live["table"] != expected.table or live["name"] in named or live["predicate"] is None:
            continue
        try:
            parsed = parse_predicate(live["predicate"], expected.column)
        except UnsupportedPredicateError:
            continue  # about other columns, or beyond this reader: not a status predicate we can judge
        unknown = sorted(parsed.literals - set(expected.values))
        if unknown:
            drift.append(
                Drift(
                    "index_predicate_unknown_value",
                    f"index {live['name']} spells {expected.column} {', '.join(map(repr, unknown))}, which "
                    f"{expected.enum.__name__} does not have: its predicate ({live['predicate']}) is out of date",
                    None,
                )
            )
    return drift


def _rebuild_index_sql(expected: EnumColumn, index: IndexPredicate, live: dict[str, Any] | None) -> str | None:
    if live is None:
        return None
    head = live["definition"].split(" WHERE ")[0]
    new_name = f"{index.name}_new"
    create = head.replace(f"INDEX {index.name} ON", f"INDEX CONCURRENTLY {new_name} ON", 1)
    return (
        f"{create} WHERE {expected.predicate_sql(index.selects)};\n"
        f"DROP INDEX CONCURRENTLY {index.name};\n"
        f"ALTER INDEX {new_name} RENAME TO {index.name};"
    )


def _find(rows: list[dict[str, Any]], **match: str) -> dict[str, Any] | None:
    return next((row for row in rows if all(row.get(k) == v for k, v in match.items())), None)


def writable_drift(catalog: Catalog, enums: Iterable[EnumColumn], writes: Mapping[str, Iterable[str]]) -> list[Drift]:
    """What a release's writes would hit: missing tables and columns, enum values an enforced CHECK rejects.

    Unlike verify, a constraint allowing *more* than the enum is fine here: that
    is the expanded state the next release brought.
    """
    tables = {column["table"] for column in catalog.columns}
    columns = {(column["table"], column["column"]) for column in catalog.columns}
    drift: list[Drift] = []
    for table, names in sorted(writes.items()):
        if table not in tables:
            drift.append(Drift("table_missing", f"writes to {table} fail: the table does not exist", None))
            continue
        drift.extend(
            Drift("column_missing", f"writes to {table}.{name} fail: the column does not exist", None)
            for name in names
            if (table, name) not in columns
        )
    for expected in enums:
        if (expected.table, expected.column) not in columns:
            if expected.table in tables and expected.column not in set(writes.get(expected.table, ())):
                drift.append(
                    Drift(
                        "column_missing",
                        f"writes to {expected.table}.{expected.column} fail: the column does not exist",
                        None,
                    )
                )
            continue
        drift.extend(_rejected_values(catalog, expected))
    return drift


def _rejected_values(catalog: Catalog, expected: EnumColumn) -> list[Drift]:
    judges: list[tuple[str, Callable[[str], bool | None]]] = []
    for check in catalog.checks:
        if check["table"] != expected.table or check["columns"] != [expected.column] or not check["enforced"]:
            continue
        try:
            parsed = parse_predicate(strip_constraint_definition(check["definition"]), expected.column)
        except UnsupportedPredicateError:
            continue  # verify names it as unverifiable; here only a certain rejection counts
        judges.append((check["name"], parsed.evaluate))
    drift = []
    for value in expected.values:
        rejecting = [name for name, evaluate in judges if evaluate(value) is False]
        if rejecting:
            drift.append(
                Drift(
                    "check_rejects_value",
                    f"{expected.table} rejects {expected.column} {value!r}: {', '.join(rejecting)} does not allow it",
                    None,
                )
            )
    return drift
