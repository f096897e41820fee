"""Sign-up to customer through the real handlers: the API, moto's SQS, the worker, the outbox
sender, and a WhatsApp Cloud API look-alike on loopback."""

import logging
from typing import Any

import boto3
import psycopg
import pytest
from chalice.test import Client

import app as app_module
from devstack.whatsapp import FakeWhatsApp, ReceivedRequest
from tests.support import sqs_events
from tests.support.api import post, register, survey_time, token
from tests.support.runtime import new_container


@pytest.fixture
def app_whatsapp(fake_whatsapp: FakeWhatsApp, monkeypatch: pytest.MonkeyPatch) -> FakeWhatsApp:
    """``fake_whatsapp``, named in the settings of a new container: the app sends to it."""
    monkeypatch.setenv("WHATSAPP_API_URL", fake_whatsapp.api_url)
    monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", fake_whatsapp.phone_number_id)
    monkeypatch.setenv("WHATSAPP_TOKEN", str(fake_whatsapp.token))
    monkeypatch.setenv("WHATSAPP_TIMEOUT_S", "1")
    new_container(monkeypatch)
    return fake_whatsapp


def texts(message: ReceivedRequest) -> list[str]:
    return [p["text"] for c in message.body["template"]["components"] for p in c.get("parameters", [])]


def approve(api_client: Client, registration: dict[str, Any], code: str) -> None:
    path = f"/registrations/{registration['id']}"
    steps = [
        ("verify", {"code": code}, None),
        ("schedule-survey", {"scheduled_at": survey_time(), "surveyor": "Budi"}, "cs"),
        ("complete-survey", {"feasible": True, "notes": "Tiang dekat rumah"}, "surveyor"),
        ("approve", None, "approver"),
    ]
    for action, body, role in steps:
        response = post(api_client, f"{path}/{action}", body, token(role) if role else None)
        assert response.status_code == 200, (action, response.json_body)


def create_customer(api_client: Client, queue_url: str, registration: dict[str, Any]) -> dict[str, Any]:
    """Ask for the customer over HTTP, then take the message off the queue as Lambda would."""
    response = post(api_client, f"/registrations/{registration['id']}/create-customer", None, token("approver"))
    assert response.status_code == 202, response.json_body
    [message] = boto3.client("sqs").receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"]
    return sqs_events.from_received(message)


def worker(api_client: Client, *records: dict[str, Any]) -> list[Any]:
    payload = api_client.lambda_.invoke("customer_worker", sqs_events.event(*records)).payload
    return list(payload["batchItemFailures"])


def test_sign_up_to_customer_with_its_whatsapp_messages(
    api_client: Client, package: dict[str, Any], app_whatsapp: FakeWhatsApp, queue_url: str, migrated_db: str
) -> None:
    registration = register(api_client, package)
    [otp_message] = app_whatsapp.delivered
    assert otp_message.to == registration["phone"].removeprefix("+")
    assert otp_message.body["template"]["name"] == "registration_otp"
    code = texts(otp_message)[0]
    approve(api_client, registration, code)

    record = create_customer(api_client, queue_url, registration)
    assert worker(api_client, record) == []
    customer = api_client.http.get(f"/registrations/{registration['id']}", headers=token("cs")).json_body["customer"]
    welcome = app_whatsapp.delivered[-1]
    assert welcome.body["template"]["name"] == "customer_created"
    assert customer["customer_number"] in texts(welcome)

    assert worker(api_client, record) == [], "a redelivery is acknowledged"
    assert len(app_whatsapp.delivered) == 2, "and sends nothing again"
    with psycopg.connect(migrated_db) as conn:
        statuses = conn.execute("SELECT template, status, payload ? 'components' FROM notification_outbox").fetchall()
    assert sorted(statuses) == [("customer_created", "sent", True), ("registration_otp", "sent", False)]


def test_whatsapp_down_delays_the_message_and_loses_none(
    api_client: Client, package: dict[str, Any], app_whatsapp: FakeWhatsApp, queue_url: str, migrated_db: str
) -> None:
    registration = register(api_client, package)
    approve(api_client, registration, texts(app_whatsapp.delivered[0])[0])
    record = create_customer(api_client, queue_url, registration)

    app_whatsapp.stop()
    assert worker(api_client, record) == [], "the customer is committed whatever WhatsApp does"
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        assert conn.execute("SELECT status FROM customer_registrations").fetchone() == ("customer_created",)
        welcome = conn.execute("SELECT status FROM notification_outbox WHERE template = 'customer_created'")
        assert welcome.fetchone() == ("pending",)
        # The backoff has passed.
        conn.execute("UPDATE notification_outbox SET next_attempt_at = now()")

    app_whatsapp.start()
    event = api_client.events.generate_cw_event("Scheduled Event", "aws.events", {}, [])
    for _ in range(3):
        api_client.lambda_.invoke("send_notifications", event)
    assert [m.body["template"]["name"] for m in app_whatsapp.delivered] == ["registration_otp", "customer_created"]


def test_without_whatsapp_settings_nothing_fails_and_the_outbox_keeps_the_message(
    api_client: Client, package: dict[str, Any], migrated_db: str
) -> None:
    app_module.runtime.database.reset()
    registration = register(api_client, package)
    with psycopg.connect(migrated_db) as conn:
        row = conn.execute("SELECT status FROM notification_outbox WHERE registration_id = %s", (registration["id"],))
        assert row.fetchone() == ("pending",)


def test_the_scheduled_sender_logs_a_line_only_when_it_had_something_to_send(
    api_client: Client,
    package: dict[str, Any],
    app_whatsapp: FakeWhatsApp,
    migrated_db: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = api_client.events.generate_cw_event("Scheduled Event", "aws.events", {}, [])
    with caplog.at_level(logging.INFO):
        assert api_client.lambda_.invoke("send_notifications", event).payload["sent"] == 0
    assert not [r for r in caplog.records if r.getMessage() == "outbox run"], "nothing was due: no line"

    app_whatsapp.stop()
    register(api_client, package)  # its code waits in the outbox
    app_whatsapp.start()
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("UPDATE notification_outbox SET next_attempt_at = now()")
    with caplog.at_level(logging.INFO):
        assert api_client.lambda_.invoke("send_notifications", event).payload["sent"] == 1
    [line] = [r for r in caplog.records if r.getMessage() == "outbox run"]
    assert line.sent == 1  # type: ignore[attr-defined]
