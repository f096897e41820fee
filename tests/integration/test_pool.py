"""The app behind a transaction-pooling proxy: pgbouncer in transaction mode, as RDS Proxy is in AWS.

Under transaction pooling a client's server connection is lent for one transaction:
whatever outlives it on the session (a named prepared statement, a session ``SET``, an
advisory lock taken outside a transaction, ``LISTEN``, a temp table) is lost or lands on
another client's session.  The API, the worker and the sender use none of these
(automatic preparation is off with ``DB_PREPARED_STATEMENTS=0``, as in the AWS stages);
``migrate`` and the drift watch hold a session-level advisory lock and connect to the
instance directly.  Skipped, with the reason, where pgbouncer is not installed (failed in CI,
where ``.ci/run`` installs it).
"""

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from chalice.test import Client

from chalicelib.platform import database
from chalicelib.platform.settings import Settings
from tests.conftest import RUNTIME_LOGIN, RUNTIME_PASSWORD
from tests.integration.test_end_to_end import approve, create_customer, worker
from tests.support import pgbouncer
from tests.support.api import otp_code, register, token
from tests.support.runtime import new_container

POOL_SIZE = 2


@pytest.fixture(scope="session")
def bouncer(server_url: str) -> Iterator[pgbouncer.Bouncer]:
    pgbouncer.require()
    users = [("postgres", ""), (RUNTIME_LOGIN, RUNTIME_PASSWORD)]
    user = psycopg.conninfo.conninfo_to_dict(server_url).get("user")
    if user and user != "postgres":
        users.append((str(user), ""))
    with pgbouncer.running(server_url, users, pool_size=POOL_SIZE) as running:
        yield running


@pytest.fixture
def pooled_db(runtime_db: str, bouncer: pgbouncer.Bouncer) -> str:
    """The test's database as the functions reach it, through the pool."""
    return bouncer.url(runtime_db)


@pytest.fixture
def pooled_client(
    api_client: Client, queue_url: str, pooled_db: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Client]:
    """``api_client`` in a new container whose database is reached through pgbouncer."""
    monkeypatch.setenv("DATABASE_URL", pooled_db)
    monkeypatch.setenv("DB_PREPARED_STATEMENTS", "0")
    runtime = new_container(monkeypatch)
    yield api_client
    runtime.database.reset()


def test_clients_share_few_server_connections(pooled_db: str) -> None:
    """The proxy is in the way and pools by transaction: three app connections, at most two backends."""
    settings = Settings.from_env({"DB_PREPARED_STATEMENTS": "0"})
    connections = [database.connect(pooled_db, settings) for _ in range(3)]
    try:
        pids = {c.execute("SELECT pg_backend_pid()").fetchone() for c in connections for _ in range(3)}
        assert 1 <= len(pids) <= POOL_SIZE
    finally:
        for conn in connections:
            conn.close()


def test_sign_up_to_customer_through_the_pool(
    pooled_client: Client, queue_url: str, migrated_db: str, package_id: str
) -> None:
    registration = register(pooled_client, {"id": package_id})
    approve(pooled_client, registration, otp_code(migrated_db, registration["id"]))
    listed = pooled_client.http.get("/registrations?status=approved", headers=token("cs")).json_body
    assert registration["id"] in [item["id"] for item in listed["items"]]

    record = create_customer(pooled_client, queue_url, registration)
    assert worker(pooled_client, record) == []
    assert worker(pooled_client, record) == [], "a redelivery is acknowledged"
    found = pooled_client.http.get(f"/registrations/{registration['id']}", headers=token("cs")).json_body
    assert found["status"] == "customer_created"
    with psycopg.connect(migrated_db) as conn:
        count = conn.execute("SELECT count(*) FROM customers WHERE registration_id = %s", (registration["id"],))
        assert count.fetchone() == (1,)


def test_many_statements_of_one_kind_through_the_pool(pooled_client: Client, package_id: str) -> None:
    """Past psycopg's prepare threshold (5) a prepared statement would be asked of another session."""
    ids = [register(pooled_client, {"id": package_id})["id"] for _ in range(8)]
    for _ in range(3):
        page = pooled_client.http.get("/registrations?limit=50", headers=token("cs")).json_body
        assert set(ids) <= {item["id"] for item in page["items"]}


def test_a_small_pool_load_holds_and_the_same_load_without_it_fails() -> None:
    """``make pool-load`` in small (60 clients, max_connections 20, a pool of 8): it keeps working."""
    pgbouncer.require()
    from tests import pool_load

    assert pool_load.main(["--clients", "60", "--max-connections", "20", "--pool-size", "8", "--seconds", "60"]) == 0


@pytest.fixture
def package_id(migrated_db: str) -> str:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        row: Any = conn.execute(
            "INSERT INTO packages (name, speed_mbps, monthly_price_idr) VALUES ('Pooled', 50, 350000) RETURNING id"
        ).fetchone()
    return str(row[0])
