"""Create Customer: the API request, the SQS worker, against the real PostgreSQL and moto's SQS."""

import json
import logging
import multiprocessing
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import moto
import psycopg
import pytest
from chalice.test import Client

import app as app_module
from bench._support import count_round_trips
from chalicelib.customers import service as customers
from chalicelib.platform.database import Database
from chalicelib.statuses import RegistrationStatus
from tests import sqs_events
from tests.integration.api import OTP_KEY, SECRET, force_status, post, register, token
from tests.support.runtime import new_container
from tests.worker_fixtures import deliver_in_process

WORKER_LOG = "chalicelib.customers.service"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials in the test region, and no endpoint override from the environment."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", sqs_events.REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def api(aws: None, migrated_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """The app on a fresh database, its SQS client and settings forgotten before and after."""
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("OTP_HASH_KEY", OTP_KEY)
    new_container(monkeypatch)
    with Client(app_module.app, stage_name="local") as test_client:
        yield test_client
    app_module.runtime.database.reset()


@pytest.fixture
def queue_url(api: Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto queue (in-process), named by ``CUSTOMER_QUEUE_URL``."""
    with moto.mock_aws():
        url = boto3.client("sqs").create_queue(QueueName="create-customer")["QueueUrl"]
        monkeypatch.setenv("CUSTOMER_QUEUE_URL", url)
        new_container(monkeypatch)
        yield url


@pytest.fixture
def client(api: Client, queue_url: str) -> Client:
    return api


@pytest.fixture
def package(api: Client) -> dict[str, Any]:
    body = {"name": f"Home {uuid.uuid4().hex[:6]}", "speed_mbps": 30, "monthly_price_idr": 250_000}
    response = post(api, "/packages", body, token("admin"))
    assert response.status_code == 201, response.json_body
    return response.json_body


def approved(api: Client, package: dict[str, Any], url: str) -> dict[str, Any]:
    registration = register(api, package)
    force_status(url, registration["id"], "approved")
    return registration


def invoke(api: Client, *records: dict[str, Any]) -> list[str]:
    """The worker's batchItemFailures, as message ids."""
    payload = api.lambda_.invoke("customer_worker", sqs_events.event(*records)).payload
    assert set(payload) == {"batchItemFailures"}
    return [failure["itemIdentifier"] for failure in payload["batchItemFailures"]]


def deliver(registration_id: str, requested_by: str = "approver-1") -> dict[str, Any]:
    return sqs_events.record(sqs_events.create_customer_body(registration_id, requested_by))


def counts(url: str, registration_id: str) -> dict[str, Any]:
    """What the database holds for a registration."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            """
            SELECT r.status,
                   (SELECT count(*) FROM customers c WHERE c.registration_id = r.id),
                   (SELECT count(*) FROM installation_tickets t JOIN customers c ON c.id = t.customer_id
                     WHERE c.registration_id = r.id),
                   (SELECT count(*) FROM notification_outbox o
                     WHERE o.registration_id = r.id AND o.template = 'customer_created'),
                   (SELECT count(*) FROM registration_status_history h
                     WHERE h.registration_id = r.id AND h.action = 'create-customer')
              FROM customer_registrations r WHERE r.id = %s
            """,
            (registration_id,),
        ).fetchone()
    assert row is not None
    return dict(zip(["status", "customers", "tickets", "outbox", "history"], row, strict=True))


CREATED = {"status": "customer_created", "customers": 1, "tickets": 1, "outbox": 1, "history": 1}
NOTHING = {"customers": 0, "tickets": 0, "outbox": 0, "history": 0}


def test_the_whole_flow_through_http_and_the_queue(
    client: Client, package: dict[str, Any], queue_url: str, migrated_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    registration = register(client, package)
    path = f"/registrations/{registration['id']}"
    steps = [
        ("verify", {}, "cs"),
        ("schedule-survey", {"scheduled_at": "2026-12-01T10:00:00+07:00", "surveyor": "Budi"}, "cs"),
        ("complete-survey", {"feasible": True, "notes": "Tiang dekat rumah"}, "surveyor"),
        ("approve", None, "approver"),
    ]
    for action, body, role in steps:
        response = post(client, f"{path}/{action}", body, token(role))
        assert response.status_code == 200, (action, response.json_body)

    response = post(client, f"{path}/create-customer", None, token("approver", sub="ani"))
    assert response.status_code == 202, response.json_body
    queued = response.json_body
    assert queued["status"] == "queued"
    assert queued["registration_id"] == registration["id"]
    uuid.UUID(queued["correlation_id"])

    received = boto3.client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    assert len(received) == 1
    message = received[0]
    assert json.loads(message["Body"]) == {
        "type": "create_customer",
        "registration_id": registration["id"],
        "requested_by": "ani",
    }
    assert message["MessageAttributes"]["correlation_id"] == {
        "StringValue": queued["correlation_id"],
        "DataType": "String",
    }

    assert invoke(client, sqs_events.from_received(message)) == []
    assert counts(migrated_db, registration["id"]) == CREATED

    shown = client.http.get(path, headers=token("cs")).json_body
    assert shown["status"] == "customer_created"
    assert shown["customer"]["customer_number"].startswith("CUS-")
    assert shown["customer"]["created_by"] == "ani"
    assert shown["customer"]["phone"] == registration["phone"]
    assert shown["ticket"]["ticket_number"].startswith("INS-")
    assert shown["ticket"]["status"] == "open"
    assert shown["history"][-1] == {
        **shown["history"][-1],
        "action": "create-customer",
        "from_status": "approved",
        "to_status": "customer_created",
        "actor": "ani",
    }
    with psycopg.connect(migrated_db) as conn:
        outbox = conn.execute(
            "SELECT dedupe_key, recipient, template, payload, status FROM notification_outbox"
            " WHERE registration_id = %s AND template = 'customer_created'",
            (registration["id"],),
        ).fetchone()
    assert outbox == (
        f"customer_created:{registration['id']}",
        registration["phone"],
        "customer_created",
        {
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Siti Nurhaliza"},
                        {"type": "text", "text": shown["customer"]["customer_number"]},
                        {"type": "text", "text": shown["ticket"]["ticket_number"]},
                    ],
                }
            ],
            "language": "id",
        },
        "pending",
    )

    again = post(client, f"{path}/create-customer", None, token("admin"))
    assert again.status_code == 200
    assert again.json_body["customer"]["id"] == shown["customer"]["id"]
    assert again.json_body["ticket"]["id"] == shown["ticket"]["id"]
    assert "Messages" not in boto3.client("sqs").receive_message(QueueUrl=queue_url)

    logged = caplog.text
    assert registration["id"] in logged
    assert registration["phone"] not in logged
    assert registration["email"] not in logged


@pytest.mark.parametrize("role", ["cs", "surveyor"])
def test_create_customer_needs_an_approver(
    client: Client, package: dict[str, Any], migrated_db: str, queue_url: str, role: str
) -> None:
    registration = approved(client, package, migrated_db)
    response = post(client, f"/registrations/{registration['id']}/create-customer", None, token(role))
    assert response.status_code == 403
    assert post(client, f"/registrations/{registration['id']}/create-customer", None).status_code == 401
    assert "Messages" not in boto3.client("sqs").receive_message(QueueUrl=queue_url)


@pytest.mark.parametrize("status", [s for s in RegistrationStatus if s not in {"approved", "customer_created"}])
def test_create_customer_before_approval_is_409(
    client: Client, package: dict[str, Any], migrated_db: str, queue_url: str, status: RegistrationStatus
) -> None:
    registration = register(client, package)
    force_status(migrated_db, registration["id"], status)
    response = post(client, f"/registrations/{registration['id']}/create-customer", None, token("approver"))
    assert response.status_code == 409
    assert response.json_body["error"]["code"] == "transition_not_allowed"
    assert response.json_body["error"]["details"]["current_status"] == status
    assert "create-customer" not in response.json_body["error"]["details"]["allowed_actions"]
    assert "Messages" not in boto3.client("sqs").receive_message(QueueUrl=queue_url)


@pytest.mark.parametrize("registration_id", ["5f0c3a52-8d47-4f2e-9a51-0c6b2f1e7d30", "not-a-uuid"])
def test_create_customer_for_an_unknown_registration_is_404(client: Client, registration_id: str) -> None:
    response = post(client, f"/registrations/{registration_id}/create-customer", None, token("approver"))
    assert response.status_code == 404
    assert response.json_body["error"]["code"] == "not_found"


def test_sqs_unreachable_is_503_and_changes_nothing(
    api: Client, package: dict[str, Any], migrated_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("CUSTOMER_QUEUE_URL", f"http://127.0.0.1:{closed_port}/123456789012/create-customer")
    new_container(monkeypatch)
    registration = approved(api, package, migrated_db)
    response = post(api, f"/registrations/{registration['id']}/create-customer", None, token("approver"))
    assert response.status_code == 503, response.json_body
    assert response.headers["Retry-After"] == "5"
    assert response.json_body["error"]["code"] == "service_unavailable"
    assert counts(migrated_db, registration["id"]) == {"status": "approved", **NOTHING}


def test_the_same_message_twice_creates_one_customer(
    api: Client, package: dict[str, Any], migrated_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=WORKER_LOG)
    registration = approved(api, package, migrated_db)
    message = deliver(registration["id"])
    assert invoke(api, message) == []
    assert invoke(api, message) == [], "a redelivery is acknowledged"
    assert counts(migrated_db, registration["id"]) == CREATED
    assert "already has its customer" in caplog.text


def test_the_same_message_twice_in_one_batch_creates_one_customer(
    api: Client, package: dict[str, Any], migrated_db: str
) -> None:
    registration = approved(api, package, migrated_db)
    assert invoke(api, deliver(registration["id"]), deliver(registration["id"])) == []
    assert counts(migrated_db, registration["id"]) == CREATED


def test_eight_concurrent_deliveries_from_separate_processes_create_one_customer(
    api: Client, package: dict[str, Any], migrated_db: str
) -> None:
    registration = approved(api, package, migrated_db)
    message = deliver(registration["id"])
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(8), context.Queue()
    processes = [
        context.Process(target=deliver_in_process, args=(migrated_db, message, barrier, results)) for _ in range(8)
    ]
    for process in processes:
        process.start()
    responses = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert responses == [{"batchItemFailures": []}] * 8
    assert counts(migrated_db, registration["id"]) == CREATED


def test_poison_records_fail_alone(
    api: Client, package: dict[str, Any], migrated_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=WORKER_LOG)
    good = [approved(api, package, migrated_db) for _ in range(2)]
    not_approved = register(api, package)
    force_status(migrated_db, not_approved["id"], "survey_completed")
    unknown_id = str(uuid.uuid4())
    poison = {
        "not json": sqs_events.record("{not json"),
        "wrong type": sqs_events.record(
            json.dumps({"type": "delete_customer", "registration_id": good[0]["id"], "requested_by": "x"})
        ),
        "extra field": sqs_events.record(
            sqs_events.create_customer_body(good[0]["id"])[:-1] + ', "status": "customer_created"}'
        ),
        "unknown registration": deliver(unknown_id),
        "not approved": deliver(not_approved["id"]),
    }
    batch = [deliver(good[0]["id"]), *poison.values(), deliver(good[1]["id"])]

    failed = invoke(api, *batch)

    assert sorted(failed) == sorted(r["messageId"] for r in poison.values())
    for registration in good:
        assert counts(migrated_db, registration["id"]) == CREATED
    assert counts(migrated_db, not_approved["id"]) == {"status": "survey_completed", **NOTHING}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == len(poison), "one line per poison record"
    for reason, record in poison.items():
        (line,) = [r.getMessage() for r in errors if record["messageId"] in r.getMessage()]
        assert "failed" in line, reason
    assert unknown_id in caplog.text
    assert "unknown registration" in caplog.text
    assert "status is survey_completed" in caplog.text


def test_the_constraint_time_bomb_fails_the_record_and_leaves_nothing(
    api: Client, package: dict[str, Any], migrated_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    registration = approved(api, package, migrated_db)
    _set_valid_status(migrated_db, [s for s in RegistrationStatus if s is not RegistrationStatus.CUSTOMER_CREATED])
    message = deliver(registration["id"])

    assert invoke(api, message) == [message["messageId"]]

    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "valid_status" in line
    assert "customer_created" in line
    assert message["messageId"] in line
    assert registration["phone"] not in caplog.text
    assert counts(migrated_db, registration["id"]) == {"status": "approved", **NOTHING}

    _set_valid_status(migrated_db, list(RegistrationStatus))
    assert invoke(api, message) == [], "the retried message succeeds once the constraint is fixed"
    assert counts(migrated_db, registration["id"]) == CREATED


def _set_valid_status(url: str, statuses: list[RegistrationStatus]) -> None:
    allowed = ", ".join(f"'{s.value}'" for s in statuses)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "ALTER TABLE customer_registrations DROP CONSTRAINT valid_status, "
            f"ADD CONSTRAINT valid_status CHECK (status IN ({allowed}))".encode()
        )


@pytest.mark.parametrize("closed", ["cancelled", "rejected"])
def test_a_registration_closed_after_approval_is_acknowledged_and_gets_nothing(
    api: Client, package: dict[str, Any], migrated_db: str, caplog: pytest.LogCaptureFixture, closed: str
) -> None:
    caplog.set_level(logging.INFO, logger=WORKER_LOG)
    registration = approved(api, package, migrated_db)
    action = "cancel" if closed == "cancelled" else "reject"
    response = post(api, f"/registrations/{registration['id']}/{action}", {"reason": "Pindah rumah"}, token("admin"))
    assert response.status_code == 200
    assert invoke(api, deliver(registration["id"])) == []
    assert counts(migrated_db, registration["id"]) == {"status": closed, **NOTHING}
    assert f"is {closed}; nothing created, acknowledged" in caplog.text


def test_a_failing_notify_hook_never_fails_the_record(
    api: Client, package: dict[str, Any], migrated_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    registrations = [approved(api, package, migrated_db) for _ in range(2)]
    already = registrations[0]
    database = Database(url=lambda: migrated_db)
    assert customers.create_customers(database, [deliver(already["id"])], notify=lambda ids: None) == {
        "batchItemFailures": []
    }
    notified: list[list[uuid.UUID]] = []

    def broken_whatsapp(ids: list[uuid.UUID]) -> None:
        notified.append(ids)
        raise ConnectionError("graph.facebook.com unreachable")

    batch = [deliver(r["id"]) for r in registrations]
    try:
        response = customers.create_customers(database, batch, notify=broken_whatsapp)
    finally:
        database.reset()
    assert response == {"batchItemFailures": []}
    assert counts(migrated_db, registrations[1]["id"]) == CREATED
    with psycopg.connect(migrated_db) as conn:
        new_row = conn.execute(
            "SELECT id FROM notification_outbox WHERE registration_id = %s AND template = 'customer_created'",
            (registrations[1]["id"],),
        ).fetchone()
    assert new_row is not None
    assert notified == [[new_row[0]]], "only the rows this batch created"
    assert "notify failed" in caplog.text
    assert "ConnectionError" in caplog.text


def test_a_lost_connection_fails_that_record_and_the_next_reconnects(
    api: Client, package: dict[str, Any], migrated_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = approved(api, package, migrated_db), approved(api, package, migrated_db)
    pid = app_module.runtime.database.run(lambda conn: conn.info.backend_pid)
    with psycopg.connect(migrated_db, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    lost, next_one = deliver(first["id"]), deliver(second["id"])

    assert invoke(api, lost, next_one) == [lost["messageId"]]

    assert counts(migrated_db, first["id"]) == {"status": "approved", **NOTHING}
    assert counts(migrated_db, second["id"]) == CREATED
    assert "AdminShutdown" in caplog.text, "the terminated session, by its class"
    assert invoke(api, lost) == [], "the redelivery succeeds"
    assert counts(migrated_db, first["id"]) == CREATED


def test_at_most_two_round_trips_per_record(api: Client, package: dict[str, Any], migrated_db: str) -> None:
    batch = [deliver(approved(api, package, migrated_db)["id"]) for _ in range(10)]
    conn = app_module.runtime.database.run(lambda conn: conn)
    with count_round_trips(conn) as round_trips:
        assert invoke(api, *batch) == []
    # One statement per record; psycopg's automatic preparation adds one round trip,
    # once per connection, on the statement's sixth use.
    assert 10 <= round_trips.count <= 2 * 10
    with count_round_trips(conn) as again:
        assert invoke(api, *batch) == []
    assert again.count == 10, "a redelivered batch costs one round trip per record too"
