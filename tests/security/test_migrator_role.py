"""migrate connects as the migrator (scripts/db_roles.sql), not as the master user: with the rights that
script gives it, and no more, it applies and verifies every migration.  The functions' login and the
drift watch's, made by the same script, hold only what their roles (migrations 011 and 030) grant."""

import re
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from chalicelib.migrate import run
from tests.conftest import MIGRATIONS, ROOT

PASSWORD = "migrator-for-tests-only"


def bootstrap(conn: "psycopg.Connection[object]", database: str, migrator: str) -> None:
    """Run scripts/db_roles.sql as psql would, with its variables bound; a runtime or watch role that
    exists already (roles are server-wide: the suite's template made them) is left as it is."""
    text = (ROOT / "scripts" / "db_roles.sql").read_text()
    values = {
        "database": database,
        **{"migrator": migrator, "runtime": f"{migrator}_api", "watch": f"{migrator}_watch"},
        **{"migrator_password": PASSWORD, "runtime_password": PASSWORD, "watch_password": PASSWORD},
    }
    for statement in [s for s in re.sub(r"--[^\n]*", "", text).split(";") if s.strip()]:
        bound = re.sub(
            r':"(\w+)"|:\'(\w+)\'',
            lambda m: (sql.Identifier(values[m.group(1)]) if m.group(1) else sql.Literal(values[m.group(2)])).as_string(
                conn
            ),
            statement,
        )
        shared = re.match(r"\s*CREATE ROLE (registration_app|registration_watch) NOLOGIN", bound)
        if shared and conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (shared.group(1),)).fetchone():
            continue
        conn.execute(bound.encode())


@pytest.fixture
def migrator_db(server_url: str, template_db: str) -> Iterator[str]:
    """A new, empty database owned by a new migrator login, as a stage's first deploy finds it."""
    migrator, database = f"migrator_{uuid.uuid4().hex[:8]}", f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        bootstrap(conn, database, migrator)
    yield make_conninfo(server_url, dbname=database, user=migrator, password=PASSWORD)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        for login in (f"{migrator}_api", f"{migrator}_watch", migrator):
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(login)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(login)))


def test_the_migrator_applies_and_verifies_every_migration(migrator_db: str) -> None:
    applied = run("apply", migrator_db, migrations_dir=MIGRATIONS)
    assert applied["ok"], applied
    verified = run("verify", migrator_db, migrations_dir=MIGRATIONS)
    assert verified["ok"], verified["drift"]


def test_the_migrator_is_no_superuser_and_cannot_make_roles(migrator_db: str) -> None:
    with psycopg.connect(migrator_db, autocommit=True) as conn:
        role = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolbypassrls, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert role == (False, False, False, True)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE ROLE intruder")


def test_the_functions_login_reads_rows_and_the_watch_login_only_verifies(migrator_db: str) -> None:
    """After apply: registration_api-like login reads and writes rows; the drift watch's reads what
    verify reads and cannot write a row or create a table."""
    assert run("apply", migrator_db, migrations_dir=MIGRATIONS)["ok"]
    migrator = psycopg.conninfo.conninfo_to_dict(migrator_db)["user"]
    runtime = make_conninfo(migrator_db, user=f"{migrator}_api")
    watch = make_conninfo(migrator_db, user=f"{migrator}_watch")
    with psycopg.connect(runtime, autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM packages")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE intruder (id int)")
    with psycopg.connect(watch, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() is not None
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM customers")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE intruder (id int)")
