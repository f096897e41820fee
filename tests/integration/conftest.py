"""Fixtures of the HTTP API tests: a Chalice test client on a fresh database, and a package."""

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

import app as app_module
from tests.integration.api import OTP_KEY, SECRET, post, token
from tests.support.runtime import new_container


@pytest.fixture
def client(migrated_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("OTP_HASH_KEY", OTP_KEY)
    new_container(monkeypatch)
    with Client(app_module.app, stage_name="local") as test_client:
        yield test_client
    app_module.runtime.database.reset()


@pytest.fixture
def package(client: Client) -> dict[str, Any]:
    name = f"Home {uuid.uuid4().hex[:6]}"
    response = post(client, "/packages", {"name": name, "speed_mbps": 30, "monthly_price_idr": 250_000}, token("admin"))
    assert response.status_code == 201, response.json_body
    return response.json_body


class CountingSecrets:
    """Secrets Manager (moto, in-process) that counts GetSecretValue calls."""

    def __init__(self) -> None:
        self.client = boto3.client("secretsmanager")
        self.reads = 0

    def get_secret_value(self, **kwargs: Any) -> Any:
        self.reads += 1
        return self.client.get_secret_value(**kwargs)


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingSecrets]:
    """moto's Secrets Manager, with no setting the secrets could provide already in the environment."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-3")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    for name in ("DATABASE_URL", "DB_HOST", "DB_PORT", "DB_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name in ("WHATSAPP_TOKEN", "OTP_HASH_KEY", "APP_SECRET_ARN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield CountingSecrets()
