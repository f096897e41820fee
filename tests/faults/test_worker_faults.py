"""The customer worker killed after its commit, and the customer queue unreachable.

(A lost database connection in the middle of a batch is covered in
``tests/integration/test_customer_worker.py::test_a_lost_connection_fails_that_record_and_the_next_reconnects``,
and the single 503 in ``::test_sqs_unreachable_is_503_and_changes_nothing``.)
"""

import json
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest
from chalice.test import Client
from moto.server import ThreadedMotoServer

import app as app_module
from chalicelib.customers import service as customers
from chalicelib.notifications.sender import send_due
from chalicelib.notifications.whatsapp import WhatsAppClient
from chalicelib.platform.database import Database
from devstack.whatsapp import FakeWhatsApp
from tests import sqs_events
from tests.conftest import ROOT
from tests.faults.kill_worker import KILLED
from tests.integration.api import OTP_KEY, SECRET, force_status, post, register, token
from tests.integration.test_customer_worker import CREATED, NOTHING, counts
from tests.support.runtime import new_container


def test_a_worker_killed_after_commit_creates_nothing_twice_on_redelivery(
    client: Client, package: dict[str, Any], migrated_db: str
) -> None:
    registration = register(client, package)
    force_status(migrated_db, registration["id"], "approved")
    record = sqs_events.record(sqs_events.create_customer_body(registration["id"]))

    killed = subprocess.run(
        [sys.executable, "-m", "tests.faults.kill_worker", migrated_db, json.dumps(record)],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == KILLED, killed.stderr.decode()
    assert counts(migrated_db, registration["id"]) == CREATED, "the statement had committed"

    # SQS delivers the unacknowledged record again, to another container.
    notified: list[list[uuid.UUID]] = []
    database = Database(url=lambda: migrated_db)
    try:
        response = customers.create_customers(database, [record], notify=notified.append)
        assert response == {"batchItemFailures": []}, "the redelivery is acknowledged"
        assert notified == [], "and has nothing new to send"
        assert counts(migrated_db, registration["id"]) == CREATED
        # The welcome message the dead worker never sent waits in the outbox, and goes out once.
        with FakeWhatsApp() as fake:
            sender = WhatsAppClient(fake.api_url, fake.phone_number_id, str(fake.token), timeout_s=2)
            first = database.run(lambda conn: send_due(conn, sender))
            again = database.run(lambda conn: send_due(conn, sender))
            welcomes = [m for m in fake.delivered if m.body["template"]["name"] == "customer_created"]
    finally:
        database.reset()
    assert first["sent"] >= 1
    assert again["sent"] == 0
    assert len(welcomes) == 1
    with psycopg.connect(migrated_db) as conn:
        row = conn.execute(
            "SELECT status, provider_message_id FROM notification_outbox WHERE dedupe_key = %s",
            (f"customer_created:{registration['id']}",),
        ).fetchone()
    assert row == ("sent", welcomes[0].message_id)


class SqsEndpoint:
    """moto's SQS as a server on a loopback port that can go away and come back (same state, same port)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._server: ThreadedMotoServer | None = None

    def start(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port)
        self._server.start()

    def stop(self) -> None:
        """Close the listening socket too: connections are refused, as when the endpoint is unreachable."""
        if self._server is not None:
            self._server.stop()
            if self._server._server is not None:
                self._server._server.server_close()
            self._server = None


@pytest.fixture
def sqs_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SqsEndpoint, str]]:
    """(the endpoint, the queue URL), named by ``AWS_ENDPOINT_URL_SQS`` and ``CUSTOMER_QUEUE_URL``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_DEFAULT_REGION", sqs_events.REGION)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", f"http://127.0.0.1:{port}")
    endpoint = SqsEndpoint(port)
    endpoint.start()
    try:
        url = boto3.client("sqs").create_queue(QueueName=f"create-customer-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        monkeypatch.setenv("CUSTOMER_QUEUE_URL", url)
        yield endpoint, url
    finally:
        endpoint.stop()


def test_sqs_down_then_back_queues_each_customer_once_and_changes_nothing_meanwhile(
    migrated_db: str, sqs_endpoint: tuple[SqsEndpoint, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, queue_url = sqs_endpoint
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("OTP_HASH_KEY", OTP_KEY)
    new_container(monkeypatch)
    with Client(app_module.app, stage_name="local") as client:
        body = {"name": f"Home {uuid.uuid4().hex[:6]}", "speed_mbps": 30, "monthly_price_idr": 250_000}
        package = post(client, "/packages", body, token("admin")).json_body
        registrations = [register(client, package)["id"] for _ in range(6)]
        for registration_id in registrations:
            force_status(migrated_db, registration_id, "approved")

        def ask(registration_id: str) -> Any:
            return post(client, f"/registrations/{registration_id}/create-customer", None, token("approver"))

        before = ask(registrations[0])
        assert before.status_code == 202

        # The endpoint goes away: the same container's cached client now finds nobody there.
        endpoint.stop()
        during = [ask(registration_id) for registration_id in registrations[1:]]
        assert [r.status_code for r in during] == [503] * 5
        assert all(r.headers["Retry-After"] == "5" for r in during)
        assert all(r.json_body["error"]["code"] == "service_unavailable" for r in during)
        for registration_id in registrations[1:]:
            assert counts(migrated_db, registration_id) == {"status": "approved", **NOTHING}

        endpoint.start()  # the same backend state: the queue and its one message are still there
        after = [ask(registration_id) for registration_id in registrations[1:]]
        assert [r.status_code for r in after] == [202] * 5, "the retries go through, no restart needed"
        messages = _drain(queue_url)
    app_module.runtime.database.reset()

    queued = sorted(json.loads(m["Body"])["registration_id"] for m in messages)
    assert queued == sorted(registrations), "one message per registration: none lost, none from the 503s"
    database = Database(url=lambda: migrated_db)
    try:
        records = [sqs_events.from_received(m) for m in messages]
        assert customers.create_customers(database, records, notify=lambda ids: None) == {"batchItemFailures": []}
    finally:
        database.reset()
    for registration_id in registrations:
        assert counts(migrated_db, registration_id) == CREATED


def _drain(queue_url: str) -> list[dict[str, Any]]:
    sqs_client = boto3.client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs_client.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=300
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
