"""`make run`'s parts: the poller's Lambda semantics on a real (moto) queue, ports, tokens, seeding, the sink;
and the whole stack in a subprocess, walked by `make demo`'s code and stopped with SIGINT."""

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.notifications.whatsapp import WhatsAppClient
from chalicelib.platform.runtime import Runtime
from chalicelib.platform.settings import Settings
from chalicelib.web.auth import authenticate
from devstack import demo, poller, stack
from devstack.whatsapp import FakeWhatsApp
from tests.conftest import ROOT


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", stack.REGION)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield boto3.client("sqs")


@pytest.fixture
def queues(sqs: Any) -> tuple[str, str]:
    queue, dead = stack.create_queues(sqs)
    # Redelivery at once, so the test need not wait out the visibility timeout.
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "0"})
    return queue, dead


class Worker:
    """A handler that fails the records whose body is ``"fail"``, and remembers what it saw."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        failed = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "fail"]
        return {"batchItemFailures": failed}


def send(sqs: Any, queue: str, *bodies: str) -> list[str]:
    return [sqs.send_message(QueueUrl=queue, MessageBody=body)["MessageId"] for body in bodies]


def visible(sqs: Any, queue: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_records_carry_their_own_ids_and_only_the_failed_ones_stay(sqs: Any, queues: tuple[str, str]) -> None:
    queue, _ = queues
    ids = send(sqs, queue, "ok-1", "fail", "ok-2")
    worker = Worker()
    batch = poller.poll_once(sqs, queue, worker, wait_s=0)
    assert batch == poller.Batch(received=3, deleted=2, failed=1)
    [event] = worker.events
    assert sorted(r["messageId"] for r in event["Records"]) == sorted(ids)
    record = event["Records"][0]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(":create-customer")
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    again = Worker()
    assert poller.poll_once(sqs, queue, again, wait_s=0) == poller.Batch(received=1, deleted=0, failed=1)
    assert [r["body"] for r in again.events[0]["Records"]] == ["fail"]
    assert again.events[0]["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"


def test_a_record_that_always_fails_reaches_the_dead_letter_queue(sqs: Any, queues: tuple[str, str]) -> None:
    queue, dead = queues
    send(sqs, queue, "fail")
    worker = Worker()
    receives = [poller.poll_once(sqs, queue, worker, wait_s=0).received for _ in range(stack.MAX_RECEIVES + 2)]
    assert receives == [1] * stack.MAX_RECEIVES + [0, 0]
    assert visible(sqs, queue) == 0
    assert visible(sqs, dead) == 1


def test_a_handler_that_raises_leaves_the_whole_batch(sqs: Any, queues: tuple[str, str]) -> None:
    queue, _ = queues
    send(sqs, queue, "a", "b")

    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("database down")

    assert poller.poll_once(sqs, queue, broken, wait_s=0) == poller.Batch(received=2, deleted=0, failed=2)
    assert poller.poll_once(sqs, queue, Worker(), wait_s=0) == poller.Batch(received=2, deleted=2, failed=0)


def test_a_listening_port_is_refused_with_one_line() -> None:
    with socket.socket() as listener:
        listener.bind((stack.HOST, 0))
        listener.listen()
        taken = listener.getsockname()[1]
        with pytest.raises(stack.StartError, match=f"127.0.0.1:{taken} \\(SQS \\(moto\\)\\) is already taken"):
            stack.refuse_taken_ports(stack.Ports(api=free_port(), sqs=taken, whatsapp=free_port()))
    stack.refuse_taken_ports(stack.Ports(api=free_port(), sqs=free_port(), whatsapp=free_port()))


@pytest.mark.parametrize("role", stack.ROLES)
def test_the_printed_tokens_pass_the_apps_own_check(role: str) -> None:
    secret = "local-secret-0123456789-0123456789"
    token = stack.staff_token(secret, role)
    container = Runtime(settings=Settings(auth_jwt_secret=secret))
    staff = authenticate({"authorization": f"Bearer {token}"}, container)
    assert [r.value for r in staff.roles] == [role]


def test_local_keys_are_made_once(tmp_path: Path) -> None:
    first = stack.local_secrets(tmp_path)
    assert stack.local_secrets(tmp_path) == first
    assert first["auth_jwt_secret"] != first["otp_hash_key"]


def test_packages_are_seeded_once(migrated_db: str) -> None:
    assert stack.seed_packages(migrated_db) == len(stack.SEED_PACKAGES)
    assert stack.seed_packages(migrated_db) == 0


def test_the_sink_shows_what_it_delivered() -> None:
    with FakeWhatsApp(token=None, phone_number_id=None) as sink:
        WhatsAppClient(sink.api_url, "1", "any").send_template("+6281234567890", "registration_otp", components=[])
        url = f"http://{sink.host}:{sink.port}/_messages"
        with urllib.request.urlopen(url, timeout=5) as answer:
            [message] = json.load(answer)["messages"]
    assert (message["to"], message["template"]) == ("6281234567890", "registration_otp")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((stack.HOST, 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_the_stack_serves_the_demo_and_stops_on_sigint(migrated_db: str, tmp_path: Path) -> None:
    ports = stack.Ports(api=free_port(), sqs=free_port(), whatsapp=free_port())
    env = {
        **os.environ,
        "DATABASE_URL": migrated_db,
        "DEVSTACK_DIR": str(tmp_path),
        "PORT": str(ports.api),
        "SQS_PORT": str(ports.sqs),
        "WHATSAPP_PORT": str(ports.whatsapp),
    }
    command = [sys.executable, "-m", "devstack"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        output = []
        for line in process.stdout:
            output.append(line)
            if "ready in" in line:
                break
        assert process.poll() is None, "".join(output)
        secret = stack.local_secrets(tmp_path)["auth_jwt_secret"]
        api, sink = f"http://{stack.HOST}:{ports.api}", f"http://{stack.HOST}:{ports.whatsapp}"
        done = demo.walk(api, sink, lambda role: stack.staff_token(secret, role), timeout_s=30)
        assert done["status"] == "customer_created"
        assert done["customer"]["customer_number"]
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0, rest
    for port in (ports.api, ports.sqs, ports.whatsapp):
        assert not stack.port_taken(stack.HOST, port), f"{port} still listens after the stack stopped"


def test_a_schema_that_does_not_match_the_code_stops_the_start_with_the_report(
    migrated_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE customer_registrations DROP CONSTRAINT valid_status")
    with pytest.raises(stack.StartError, match="does not match the code"):
        stack.migrate(migrated_db)
    report = json.loads(capsys.readouterr().err)
    assert report["ok"] is False
    assert "check_missing" in [drift["kind"] for drift in report["drift"]]
