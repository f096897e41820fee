"""One JSON line per request, and no phone number or e-mail address in any log line."""

import json
import logging
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.platform.logs import JsonFormatter
from tests.integration.api import post, register, registration_body, token


def test_each_request_logs_one_line(client: Client, package: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    created = register(client, package)
    client.http.get(f"/registrations/{created['id']}")
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "registration.request"]
    assert [(line["route"], line["status"]) for line in lines] == [
        ("POST /registrations", 201),
        ("GET /registrations/{registration_id}", 401),
    ]
    assert all(line["request_id"] and line["duration_ms"] >= 0 for line in lines)


def test_no_log_line_holds_personal_data(
    client: Client, package: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = registration_body(package, email="Rahasia.Sekali@example.co.id")
    created = post(client, "/registrations", body).json_body
    post(client, "/registrations", body)  # the duplicate: PostgreSQL's error names the value
    post(client, "/registrations", {**body, "phone": "+65 9123 4567"})
    post(client, f"/registrations/{created['id']}/verify", {"code": "000000"})
    client.http.get(f"/registrations/{created['id']}", headers=token("cs"))
    text = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert "registration.request" in text
    for secret in (created["phone"], created["phone"][1:], body["phone"], "Rahasia.Sekali", "91234567"):
        assert secret not in text
