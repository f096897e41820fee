"""Sign-up to customer through the real handlers: the API, moto's SQS, the worker, the outbox
sender, and a WhatsApp Cloud API look-alike on loopback."""

from collections.abc import Iterator
from typing import Any

import boto3
import moto
import psycopg
import pytest
from chalice.test import Client

import app as app_module
from devstack.whatsapp import FakeWhatsApp, ReceivedRequest
from tests import sqs_events
from tests.integration.api import post, register, token
from tests.support.runtime import new_container


@pytest.fixture
def whatsapp(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWhatsApp]:
    with FakeWhatsApp() as fake:
        monkeypatch.setenv("WHATSAPP_API_URL", fake.api_url)
        monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", fake.phone_number_id)
        monkeypatch.setenv("WHATSAPP_TOKEN", str(fake.token))
        monkeypatch.setenv("WHATSAPP_TIMEOUT_S", "1")
        new_container(monkeypatch)
        yield fake


@pytest.fixture
def queue_url(client: Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", sqs_events.REGION)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(name, raising=False)
    with moto.mock_aws():
        url = boto3.client("sqs").create_queue(QueueName="create-customer")["QueueUrl"]
        monkeypatch.setenv("CUSTOMER_QUEUE_URL", url)
        new_container(monkeypatch)
        yield url


def texts(message: ReceivedRequest) -> list[str]:
    return [p["text"] for c in message.body["template"]["components"] for p in c.get("parameters", [])]


def approve(client: Client, registration: dict[str, Any], code: str) -> None:
    path = f"/registrations/{registration['id']}"
    steps = [
        ("verify", {"code": code}, None),
        ("schedule-survey", {"scheduled_at": "2026-12-01T10:00:00+07:00", "surveyor": "Budi"}, "cs"),
        ("complete-survey", {"feasible": True, "notes": "Tiang dekat rumah"}, "surveyor"),
        ("approve", None, "approver"),
    ]
    for action, body, role in steps:
        response = post(client, f"{path}/{action}", body, token(role) if role else None)
        assert response.status_code == 200, (action, response.json_body)


def create_customer(client: Client, queue_url: str, registration: dict[str, Any]) -> dict[str, Any]:
    """Ask for the customer over HTTP, then take the message off the queue as Lambda would."""
    response = post(client, f"/registrations/{registration['id']}/create-customer", None, token("approver"))
    assert response.status_code == 202, response.json_body
    [message] = boto3.client("sqs").receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"]
    return sqs_events.from_received(message)


def worker(client: Client, *records: dict[str, Any]) -> list[Any]:
    payload = client.lambda_.invoke("customer_worker", sqs_events.event(*records)).payload
    return list(payload["batchItemFailures"])


def test_sign_up_to_customer_with_its_whatsapp_messages(
    client: Client, package: dict[str, Any], whatsapp: FakeWhatsApp, queue_url: str, migrated_db: str
) -> None:
    registration = register(client, package)
    [otp_message] = whatsapp.delivered
    assert otp_message.to == registration["phone"].removeprefix("+")
    assert otp_message.body["template"]["name"] == "registration_otp"
    code = texts(otp_message)[0]
    approve(client, registration, code)

    record = create_customer(client, queue_url, registration)
    assert worker(client, record) == []
    customer = client.http.get(f"/registrations/{registration['id']}", headers=token("cs")).json_body["customer"]
    welcome = whatsapp.delivered[-1]
    assert welcome.body["template"]["name"] == "customer_created"
    assert customer["customer_number"] in texts(welcome)

    assert worker(client, record) == [], "a redelivery is acknowledged"
    assert len(whatsapp.delivered) == 2, "and sends nothing again"
    with psycopg.connect(migrated_db) as conn:
        statuses = conn.execute("SELECT template, status, payload ? 'components' FROM notification_outbox").fetchall()
    assert sorted(statuses) == [("customer_created", "sent", True), ("registration_otp", "sent", False)]


def test_whatsapp_down_delays_the_message_and_loses_none(
    client: Client, package: dict[str, Any], whatsapp: FakeWhatsApp, queue_url: str, migrated_db: str
) -> None:
    registration = register(client, package)
    approve(client, registration, texts(whatsapp.delivered[0])[0])
    record = create_customer(client, queue_url, registration)

    whatsapp.stop()
    assert worker(client, record) == [], "the customer is committed whatever WhatsApp does"
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        assert conn.execute("SELECT status FROM customer_registrations").fetchone() == ("customer_created",)
        welcome = conn.execute("SELECT status FROM notification_outbox WHERE template = 'customer_created'")
        assert welcome.fetchone() == ("pending",)
        # The backoff has passed.
        conn.execute("UPDATE notification_outbox SET next_attempt_at = now()")

    whatsapp.start()
    event = client.events.generate_cw_event("Scheduled Event", "aws.events", {}, [])
    for _ in range(3):
        client.lambda_.invoke("send_notifications", event)
    assert [m.body["template"]["name"] for m in whatsapp.delivered] == ["registration_otp", "customer_created"]


def test_without_whatsapp_settings_nothing_fails_and_the_outbox_keeps_the_message(
    client: Client, package: dict[str, Any], migrated_db: str
) -> None:
    app_module.runtime.database.reset()
    registration = register(client, package)
    with psycopg.connect(migrated_db) as conn:
        row = conn.execute("SELECT status FROM notification_outbox WHERE registration_id = %s", (registration["id"],))
        assert row.fetchone() == ("pending",)
