"""Driving the HTTP API in tests: tokens, requests, and registrations to work on.

The ``api_client`` and ``package`` fixtures live in ``tests/conftest.py``.
"""

import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
import psycopg
from chalice.test import Client

from chalicelib.registrations.otp import SendBudget
from chalicelib.workflow import Action

SECRET = "test-secret-not-for-production-0123456789"
# The abuse limits for tests that call the services directly: the local stage's.
BUDGET = SendBudget("192.0.2.1", per_client_per_hour=1000, per_day=1_000_000)
STALE_AFTER = timedelta(hours=24)
OTP_KEY = "otp-key-for-tests-only"


def survey_time(days_ahead: int = 7) -> str:
    """10:00 WIB (UTC+7), ``days_ahead`` days from now: schedule-survey takes only the future, 90 days at most."""
    wib = timezone(timedelta(hours=7))
    return (
        (datetime.now(wib) + timedelta(days=days_ahead)).replace(hour=10, minute=0, second=0, microsecond=0).isoformat()
    )


BODY_BY_ACTION: dict[Action, dict[str, Any] | None] = {
    Action.VERIFY: {},
    Action.SCHEDULE_SURVEY: {"scheduled_at": survey_time(), "surveyor": "Budi"},
    Action.COMPLETE_SURVEY: {"feasible": True, "notes": "Tiang dekat rumah"},
    Action.APPROVE: None,
    Action.REJECT: {"reason": "Di luar jangkauan"},
    Action.CANCEL: {"reason": "Pindah rumah"},
}


def token(*roles: str, secret: str = SECRET, expires_in: int = 600, **extra: Any) -> dict[str, str]:
    claims = {
        "sub": f"user-{uuid.uuid4().hex[:6]}",
        "cognito:groups": list(roles),
        "exp": int(time.time()) + expires_in,
    }
    return {"Authorization": "Bearer " + jwt.encode({**claims, **extra}, secret, algorithm="HS256")}


JSON = {"Content-Type": "application/json"}


def post(client: Client, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.http.post(path, body=raw, headers={**JSON, **(headers or {})})


def registration_body(package: dict[str, Any], **changes: Any) -> dict[str, Any]:
    unique = uuid.uuid4().int % 10**8
    body = {
        "full_name": "Siti Nurhaliza",
        "email": f"siti{unique}@example.co.id",
        "phone": f"0812{unique:08d}",
        "address": "Jl. Merdeka No. 1",
        "city": "Bandung",
        "package_id": package["id"],
    }
    return {**body, **changes}


def register(client: Client, package: dict[str, Any], **changes: Any) -> dict[str, Any]:
    response = post(client, "/registrations", registration_body(package, **changes))
    assert response.status_code == 201, response.json_body
    created: dict[str, Any] = response.json_body
    return created


def force_status(url: str, registration_id: str, status: str, feasible: bool | None = True) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE customer_registrations SET status = %s, survey_feasible = %s WHERE id = %s",
            (status, feasible, registration_id),
        )


def otp_code(url: str, registration_id: str) -> str:
    """The newest code sent to the registrant, read from its (not yet sent) outbox row."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT payload -> 'components' -> 0 -> 'parameters' -> 0 ->> 'text' FROM notification_outbox "
            "WHERE registration_id = %s AND template = 'registration_otp' ORDER BY created_at DESC, dedupe_key DESC "
            "LIMIT 1",
            (registration_id,),
        ).fetchone()
    assert row is not None
    assert row[0] is not None
    return str(row[0])
