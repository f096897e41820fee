"""The migration files: found, named, checksummed.

A file is ``NNN_verb_noun.sql``.  Its first lines may carry directives as SQL
comments; the one understood today is

    -- migrate: no-transaction

for a file of statements that PostgreSQL refuses inside a transaction
(``CREATE INDEX CONCURRENTLY``).  Each of its statements runs alone, in autocommit,
in the file's order (a statement ends with ``;`` at the end of a line: plain DDL, no
function bodies), and the history row is written after the last succeeds, so every
statement must be safe to run again (``IF NOT EXISTS``).
"""

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")
_DIRECTIVE = re.compile(r"^--\s*migrate:\s*(?P<word>[a-z-]+)\s*$")
_KNOWN_DIRECTIVES = frozenset({"no-transaction"})


class MigrationFilesError(Exception):
    """The migrations folder is not as the runner needs it (bad names, repeats)."""


@dataclass(frozen=True)
class MigrationFile:
    """One SQL file, as it stands on disk now."""

    name: str
    number: int
    sql: str
    checksum: str
    in_transaction: bool


def migrations_dir() -> Path:
    """Where the SQL files are: ``MIGRATIONS_DIR``, or ``migrations/`` beside ``chalicelib/``.

    In the deployment zip ``migrations/`` sits beside ``chalicelib/`` at the root
    (``vendor/migrations`` links to it, and Chalice copies ``vendor/`` to the root).
    """
    configured = os.environ.get("MIGRATIONS_DIR")
    return Path(configured) if configured else Path(__file__).resolve().parents[2] / "migrations"


def load_migrations(directory: Path | None = None) -> list[MigrationFile]:
    """Every migration in ``directory``, in the order they apply.

    Raises ``MigrationFilesError`` when the folder is missing, a ``.sql`` file is
    misnamed, two files share a number, or a directive is unknown.
    """
    directory = directory or migrations_dir()
    if not directory.is_dir():
        raise MigrationFilesError(f"no migrations folder at {directory}")
    found: dict[int, MigrationFile] = {}
    for path in sorted(directory.glob("*.sql")):
        migration = _read(path)
        if migration.number in found:
            raise MigrationFilesError(
                f"{found[migration.number].name} and {migration.name} share number {migration.number}"
            )
        found[migration.number] = migration
    return [found[number] for number in sorted(found)]


def _read(path: Path) -> MigrationFile:
    match = _NAME.match(path.name)
    if match is None:
        raise MigrationFilesError(f"{path.name}: migration files are named NNN_verb_noun.sql")
    raw = path.read_bytes()
    sql = raw.decode("utf-8")
    directives = _directives(path.name, sql)
    return MigrationFile(
        name=path.name,
        number=int(match.group(1)),
        sql=sql,
        checksum=hashlib.sha256(raw).hexdigest(),
        in_transaction="no-transaction" not in directives,
    )


def statements(sql: str) -> list[str]:
    """A no-transaction file's statements, each to be sent alone (PostgreSQL runs the
    statements of one query string in one implicit transaction, which CONCURRENTLY refuses)."""
    found: list[str] = []
    current: list[str] = []
    for line in sql.splitlines():
        current.append(line)
        if line.rstrip().endswith(";"):
            found.append("\n".join(current))
            current = []
    found.append("\n".join(current))
    return [s.strip() for s in found if _has_code(s)]


def _has_code(chunk: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in chunk.splitlines())


def _directives(name: str, sql: str) -> set[str]:
    directives: set[str] = set()
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        match = _DIRECTIVE.match(line.strip())
        if match is None:
            continue
        if match.group("word") not in _KNOWN_DIRECTIVES:
            raise MigrationFilesError(f"{name}: unknown directive {line.strip()!r}")
        directives.add(match.group("word"))
    return directives
