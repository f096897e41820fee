"""One create-customer followed by its correlation id: the API's line, the queue, the worker, the outbox, the send."""

import json
import logging
from typing import Any

import boto3
import psycopg
import pytest
from chalice.test import Client

from chalicelib.platform.logs import JsonFormatter
from devstack.whatsapp import FakeWhatsApp
from tests.integration.test_end_to_end import app_whatsapp, approve, texts, worker
from tests.support import sqs_events
from tests.support.api import post, register, token

__all__ = ["app_whatsapp"]  # a fixture


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(JsonFormatter().format(record)) for record in caplog.records]


def test_one_create_customer_from_the_api_line_to_the_whatsapp_send(
    api_client: Client,
    package: dict[str, Any],
    app_whatsapp: FakeWhatsApp,
    queue_url: str,
    migrated_db: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    registration = register(api_client, package)
    approve(api_client, registration, texts(app_whatsapp.delivered[0])[0])
    caplog.set_level(logging.INFO)
    caplog.clear()

    response = post(api_client, f"/registrations/{registration['id']}/create-customer", None, token("approver"))
    assert response.status_code == 202, response.json_body
    correlation_id = response.json_body["correlation_id"]
    [api_line] = [line for line in lines(caplog) if line["logger"] == "registration.request"]
    assert api_line["route"] == "POST /registrations/{registration_id}/create-customer"
    assert api_line["request_id"] == api_line["correlation_id"] == correlation_id

    # The request id travels as a message attribute; the pinned body is unchanged.
    [message] = boto3.client("sqs").receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"]
    assert message["MessageAttributes"]["correlation_id"]["StringValue"] == correlation_id
    body = json.loads(message["Body"])
    assert set(body) == {"type", "registration_id", "requested_by"}
    assert (body["type"], body["registration_id"]) == ("create_customer", registration["id"])
    caplog.clear()
    assert worker(api_client, sqs_events.from_received(message)) == []

    chain = lines(caplog)
    worker_lines = [line for line in chain if line["logger"] == "chalicelib.customers.service"]
    assert any(" is customer " in line["message"] for line in worker_lines)
    [sent] = [line for line in chain if line["logger"] == "chalicelib.notifications.sender"]
    assert "(customer_created): sent on attempt 1" in sent["message"]
    assert {line.get("correlation_id") for line in [*worker_lines, sent]} == {correlation_id}
    welcome = app_whatsapp.delivered[-1]
    assert welcome.body["template"]["name"] == "customer_created"
    with psycopg.connect(migrated_db) as conn:
        row = conn.execute(
            "SELECT correlation_id FROM notification_outbox "
            "WHERE template = 'customer_created' AND registration_id = %s",
            (registration["id"],),
        ).fetchone()
    assert row == (correlation_id,)


def test_the_scheduled_sender_names_the_request_that_wrote_the_row(
    api_client: Client,
    package: dict[str, Any],
    app_whatsapp: FakeWhatsApp,
    migrated_db: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app_whatsapp.stop()  # the OTP is not sent right after the commit: the scheduled sender sends it
    caplog.set_level(logging.INFO)
    registration = register(api_client, package)
    [api_line] = [line for line in lines(caplog) if line["logger"] == "registration.request"]
    app_whatsapp.start()
    caplog.clear()
    with psycopg.connect(migrated_db) as conn:
        conn.execute(
            "UPDATE notification_outbox SET next_attempt_at = now() WHERE registration_id = %s", (registration["id"],)
        )
    api_client.lambda_.invoke(
        "send_notifications", api_client.events.generate_cw_event("Scheduled Event", "aws.events", {}, [])
    )
    [sent] = [line for line in lines(caplog) if "sent on attempt" in line["message"]]
    assert sent["correlation_id"] == api_line["correlation_id"]
    # A line outside any chain carries none.
    assert all(
        "correlation_id" not in line for line in lines(caplog) if line["logger"] == "chalicelib.notifications.service"
    )
