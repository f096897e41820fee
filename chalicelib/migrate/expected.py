"""The schema the migrations build, built: replayed by the runner into a scratch database.

A new database (``migrate_scratch_<epoch>_<random>_<live database>``) is created on the live
database's server, from ``template0``, every migration file is applied to it by
the same code ``apply`` uses (``execute.replay``: each file in its own transaction,
no-transaction files alone, exactly as in production), its catalog is read with the
same query as the live one, and it is dropped, whatever happened.  Being on the
same server, both catalogs are rendered by the same PostgreSQL version.

The role that runs verify needs ``CREATEDB`` (RDS's master user has it).  The
name is unique per run, so concurrent verifies never share a scratch database,
and the runner's advisory lock (per database) never makes them wait for each
other.  A scratch database left behind by a run that was killed (a Lambda
timeout) is dropped by the next run once it is an hour old.
"""

import time
import uuid
from collections.abc import Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from chalicelib.migrate import stored
from chalicelib.migrate.execute import replay
from chalicelib.migrate.files import MigrationFile
from chalicelib.migrate.schema import Schema, read_schema
from chalicelib.platform.settings import Settings

if TYPE_CHECKING:
    import psycopg

SCRATCH_PREFIX = "migrate_scratch_"
STALE_AFTER_S = 3600


class ExpectedSchemaError(Exception):
    """The expected schema could not be built (no CREATEDB, or a file failed on an empty database)."""


def build_expected(conn: "psycopg.Connection[Any]", files: Sequence[MigrationFile], settings: Settings) -> Schema:
    """Replay ``files`` into a scratch database on ``conn``'s server, read its schema, drop it.

    Raises ``ExpectedSchemaError`` when it cannot (no CREATEDB, a file that fails on an empty database).
    """
    import psycopg
    from psycopg import sql

    # <epoch>_<random>_<live database>: unique per run, old ones findable, and an operator sees whose it was.
    name = f"{SCRATCH_PREFIX}{int(time.time())}_{uuid.uuid4().hex[:8]}_{conn.info.dbname[:24]}"
    # CREATE DATABASE refuses a transaction: use the caller's connection when it is idle.
    admin = conn if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE else None
    own_admin = admin is None
    try:
        if admin is None:
            admin = psycopg.connect(_conninfo(conn, conn.info.dbname), autocommit=True)
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    except psycopg.Error as error:
        if own_admin and admin is not None:
            admin.close()
        raise ExpectedSchemaError(
            "the schema cannot be compared with the migrations: creating a scratch database to replay them into "
            f"failed ({_said(error)}); the role verify runs as needs CREATEDB (RDS's master user has it)"
        ) from error
    try:
        with psycopg.connect(
            _conninfo(conn, name), autocommit=True, connect_timeout=settings.db_connect_timeout_s
        ) as scratch:
            # A throwaway database: its commits need not wait for the disk.
            scratch.execute("SET synchronous_commit = off")
            try:
                replay(scratch, files, settings)
            except psycopg.Error as error:
                raise ExpectedSchemaError(
                    f"the schema cannot be compared with the migrations: replaying them into an empty database "
                    f"failed ({_said(error)}): fix the migration files"
                ) from error
            schema = read_schema(scratch)
        return schema
    finally:
        with suppress(psycopg.Error):
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            _drop_stale(admin)
        if own_admin:
            admin.close()


def build_snapshot(
    conn: "psycopg.Connection[Any]", files: Sequence[MigrationFile], settings: Settings
) -> dict[str, Any]:
    """The package's snapshot (``stored.snapshot``) of what ``files`` build on ``conn``'s server's major version.

    ``make package`` calls it on the embedded PostgreSQL; raises ``ExpectedSchemaError`` as ``build_expected``.
    """
    schema = build_expected(conn, files, settings)
    return stored.snapshot([(stored.key(files, conn.info.server_version), schema)])


def _drop_stale(admin: "psycopg.Connection[Any]") -> None:
    """Scratch databases that a killed run (a Lambda timeout) left behind, an hour on."""
    from psycopg import sql

    rows = admin.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (SCRATCH_PREFIX,)).fetchall()
    for (name,) in rows:
        stamp = name[len(SCRATCH_PREFIX) :].split("_")[0]
        if stamp.isdigit() and time.time() - int(stamp) > STALE_AFTER_S:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _conninfo(conn: "psycopg.Connection[Any]", dbname: str) -> str:
    from psycopg.conninfo import make_conninfo

    # conn.info.dsn leaves the password out; the same credentials reach the scratch database.
    return make_conninfo(conn.info.dsn, dbname=dbname, password=conn.info.password or None)


def _said(error: Exception) -> str:
    diag = getattr(error, "diag", None)
    return (getattr(diag, "message_primary", None) or str(error)).strip()
