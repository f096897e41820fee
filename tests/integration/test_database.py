"""One connection per container: reused, re-opened after a failure, credentials from a cached RDS secret."""

import json
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from chalicelib.errors import ServiceUnavailableError
from chalicelib.platform.database import Database, conninfo
from chalicelib.platform.runtime import Runtime
from chalicelib.platform.secrets import Secrets
from chalicelib.platform.settings import Settings
from tests.integration.conftest import CountingSecrets


def rds_secret(url: str, **changes: Any) -> str:
    parts = conninfo_to_dict(url)
    secret = {
        "engine": "postgres",
        "username": parts.get("user", "postgres"),
        "password": parts.get("password") or "",
        "host": parts.get("host", "127.0.0.1"),
        "port": int(parts.get("port") or 5432),
        "dbname": parts["dbname"],
    }
    return json.dumps({**secret, **changes})


def test_the_secret_is_read_once_per_container(migrated_db: str, secrets: CountingSecrets) -> None:
    arn = secrets.client.create_secret(Name="db", SecretString=rds_secret(migrated_db))["ARN"]
    settings, container = Settings(db_secret_arn=arn), Secrets(lambda: secrets)
    urls = {conninfo(settings, container) for _ in range(3)}
    assert len(urls) == 1
    assert secrets.reads == 1


def test_a_failed_connection_rereads_a_changed_secret(
    migrated_db: str, secrets: CountingSecrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = secrets.client.create_secret(Name="db", SecretString=rds_secret(migrated_db, port=1))["ARN"]
    monkeypatch.setenv("DB_SECRET_ARN", arn)
    monkeypatch.setenv("DB_CONNECT_TIMEOUT_S", "2")
    database = Runtime(secrets_client=lambda: secrets).database
    with pytest.raises(psycopg.OperationalError):
        database.run(lambda conn: conn.execute("SELECT 1"))
    # Rotated (here: moved); the container picks it up without a restart.
    secrets.client.put_secret_value(SecretId=arn, SecretString=rds_secret(migrated_db))
    assert database.run(lambda conn: conn.execute("SELECT 1").fetchone()) == (1,)
    assert secrets.reads == 2


def test_secrets_manager_down_is_service_unavailable(secrets: CountingSecrets) -> None:
    settings = Settings(db_secret_arn="arn:aws:secretsmanager:ap-southeast-3:123456789012:secret:nope")
    with pytest.raises(ServiceUnavailableError):
        conninfo(settings, Secrets(lambda: secrets))


def test_one_connection_is_reused_and_reopened_after_a_failure(migrated_db: str) -> None:
    database = Database(lambda: migrated_db)
    first = database.run(lambda conn: conn.info.backend_pid)
    assert database.run(lambda conn: conn.info.backend_pid) == first, "reused"
    with psycopg.connect(migrated_db, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
    with pytest.raises(psycopg.OperationalError):
        database.run(lambda conn: conn.execute("SELECT 1"))
    second = database.run(lambda conn: conn.info.backend_pid)
    assert second != first, "re-opened on the next call"


def test_prepared_statements_can_be_turned_off_for_rds_proxy(migrated_db: str) -> None:
    container = Runtime({"DATABASE_URL": migrated_db, "DB_PREPARED_STATEMENTS": "0"})
    database = container.database
    try:
        for _ in range(10):
            database.run(lambda conn: conn.execute("SELECT status FROM customer_registrations WHERE id = %s", (None,)))
        prepared = database.run(lambda conn: conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone())
        assert prepared == (0,)
        assert database.run(lambda conn: conn.prepare_threshold) is None
    finally:
        database.reset()
