"""Fixtures of the HTTP API tests: a Chalice test client on a fresh database, and a package."""

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib import config
from tests.integration.api import OTP_KEY, SECRET, post, token


@pytest.fixture
def client(migrated_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("OTP_HASH_KEY", OTP_KEY)
    config.settings.cache_clear()
    app_module.database.reset()
    with Client(app_module.app, stage_name="local") as test_client:
        yield test_client
    app_module.database.reset()
    config.settings.cache_clear()


@pytest.fixture
def package(client: Client) -> dict[str, Any]:
    name = f"Home {uuid.uuid4().hex[:6]}"
    response = post(client, "/packages", {"name": name, "speed_mbps": 30, "monthly_price_idr": 250_000}, token("admin"))
    assert response.status_code == 201, response.json_body
    return response.json_body
