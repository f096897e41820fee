"""The expected schema, stored once per set of migrations: verify without replaying them.

The schema the migrations build changes only when the migrations change, so it is
replayed once and kept in ``migrate_expected_schema`` (a table migrate owns, created
beside the history table), keyed by

- the checksums of the applied files, in order,
- the server's major version (both catalogs are rendered by the same PostgreSQL),
- the text of the query that reads a schema (a reader that changes reads otherwise).

It is written only when ``apply`` or the gate accepts (their verify found no drift),
by the migrate user; the hourly watch only reads it, so it needs neither CREATEDB nor
any write.  Each row carries the sha256 of its key and objects: a row edited by hand
fails it, is ignored and the migrations are replayed, as on a key that does not
match.  No file kept by hand: every row is a replay's own output.

The package carries one more place to look: ``make package`` replays the release's
migrations on a server of the target's major version (the embedded PostgreSQL) and
writes the result, keyed and checksummed the same way, to ``migrations/expected-schema.json``
in the zip (``snapshot_path``; never in git).  A gate that brings a new file then finds
the expected schema of the files it just applied there instead of replaying them on the
live server; once the release is accepted it is stored in the table as above.  A key that
does not match (another major version) is ignored, and the migrations are replayed.
"""

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.migrate.files import MigrationFile, migrations_dir
from chalicelib.migrate.schema import Schema, schema_query

if TYPE_CHECKING:
    import psycopg

STORE_TABLE = "migrate_expected_schema"

CREATE_STORE = f"""
CREATE TABLE IF NOT EXISTS {STORE_TABLE} (
    key text PRIMARY KEY,
    objects jsonb NOT NULL,
    checksum text NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
)
"""

# The verdicts ``load`` gives, for the report's ``checked`` line.
FOUND = "found"
PACKAGED = "packaged"
MISSING = "missing"
TAMPERED = "tampered"

SNAPSHOT_NAME = "expected-schema.json"
SNAPSHOT_FORMAT = 1


def key(files: Sequence[MigrationFile], server_version: int) -> str:
    """What the expected schema depends on, hashed: the files' checksums, the major version, the reader."""
    reader = hashlib.sha256(schema_query(server_version).encode()).hexdigest()
    parts = [f"pg{server_version // 10000}", reader, *(f"{m.name}:{m.checksum}" for m in files)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def checksum(store_key: str, objects: Any) -> str:
    canonical = json.dumps(objects, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{store_key}\n{canonical}".encode()).hexdigest()


def load(conn: "psycopg.Connection[Any]", store_key: str) -> tuple[Schema | None, str]:
    """(the stored schema, ``FOUND``) or (None, ``MISSING`` / ``TAMPERED``).  One round trip; reads only."""
    import psycopg

    query = f"SELECT objects, checksum FROM {STORE_TABLE} WHERE key = %s"
    try:
        if conn.autocommit and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            row = conn.execute(query, (store_key,)).fetchone()  # one round trip; a failure leaves nothing open
        else:
            with conn.transaction():  # a savepoint: a missing table must not spoil the caller's transaction
                row = conn.execute(query, (store_key,)).fetchone()
    except psycopg.errors.UndefinedTable:
        return None, MISSING
    if row is None:
        return None, MISSING
    objects, stored_checksum = row
    if checksum(store_key, objects) != stored_checksum:
        return None, TAMPERED
    return Schema(objects), FOUND


def save(conn: "psycopg.Connection[Any]", store_key: str, schema: Schema) -> None:
    """Keep ``schema`` under ``store_key`` (the migrate user, after an accepted apply).

    Older keys stay: a rollback to the previous release finds its own.
    """
    from psycopg.types.json import Jsonb

    with conn.transaction():
        conn.execute(CREATE_STORE)
        conn.execute(
            f"INSERT INTO {STORE_TABLE} (key, objects, checksum) VALUES (%s, %s, %s) "
            "ON CONFLICT (key) DO UPDATE SET objects = EXCLUDED.objects, checksum = EXCLUDED.checksum, "
            "stored_at = now()",
            (store_key, Jsonb(schema.objects), checksum(store_key, schema.objects)),
        )


def snapshot_path() -> Path:
    """Where the package's snapshot is: ``EXPECTED_SCHEMA_SNAPSHOT``, or beside the migration files."""
    configured = os.environ.get("EXPECTED_SCHEMA_SNAPSHOT")
    return Path(configured) if configured else migrations_dir() / SNAPSHOT_NAME


def snapshot(entries: Sequence[tuple[str, Schema]]) -> dict[str, Any]:
    """The snapshot file's content: each (key, schema) with its checksum."""
    return {
        "format": SNAPSHOT_FORMAT,
        "entries": [
            {"key": store_key, "objects": schema.objects, "checksum": checksum(store_key, schema.objects)}
            for store_key, schema in entries
        ],
    }


def load_packaged(store_key: str, path: Path | None = None) -> tuple[Schema | None, str]:
    """(the schema the package carries for ``store_key``, ``PACKAGED``), or (None, ``MISSING`` / ``TAMPERED``).

    No file, another format or no entry for this key is ``MISSING``; an entry (or a
    file) that does not read back as written is ``TAMPERED``.  Nothing is raised: a
    snapshot that cannot be used means a replay, as before there was one.
    """
    path = path or snapshot_path()
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None, MISSING
    except (OSError, ValueError):
        return None, TAMPERED
    if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
        return None, MISSING
    for entry in data.get("entries") or ():
        if not isinstance(entry, dict) or entry.get("key") != store_key:
            continue
        objects = entry.get("objects")
        if not isinstance(objects, dict) or checksum(store_key, objects) != entry.get("checksum"):
            return None, TAMPERED
        return Schema(objects), PACKAGED
    return None, MISSING
