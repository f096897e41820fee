"""`make run`'s parts: the poller's Lambda semantics on a real (moto) queue, ports, tokens, seeding, the sink;
and the whole stack in a subprocess, walked by `make demo`'s code and stopped with SIGINT."""

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws

from chalicelib.notifications.whatsapp import WhatsAppClient
from chalicelib.platform.runtime import Runtime
from chalicelib.platform.settings import Settings
from chalicelib.web.auth import authenticate
from devstack import demo, poller, stack
from devstack.whatsapp import FakeWhatsApp
from tests.conftest import ROOT
from tests.support import devstack_process


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
            stack.refuse_taken_ports(
                stack.Ports(api=devstack_process.free_port(), sqs=taken, whatsapp=devstack_process.free_port())
            )
    stack.refuse_taken_ports(
        stack.Ports(
            api=devstack_process.free_port(), sqs=devstack_process.free_port(), whatsapp=devstack_process.free_port()
        )
    )


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


@pytest.mark.slow
def test_the_stack_serves_the_demo_and_stops_on_sigint(migrated_db: str, tmp_path: Path) -> None:
    running = devstack_process.start(migrated_db, tmp_path)
    ports = running.ports
    try:
        secret = stack.local_secrets(tmp_path)["auth_jwt_secret"]
        api, sink = f"http://{stack.HOST}:{ports.api}", f"http://{stack.HOST}:{ports.whatsapp}"
        done = demo.walk(api, sink, lambda role: stack.staff_token(secret, role), timeout_s=30)
        assert done["status"] == "customer_created"
        assert done["customer"]["customer_number"]
    finally:
        rest = devstack_process.stop(running)
    assert running.process.returncode == 0, rest
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


def test_demo_lines_mask_phone_numbers_and_e_mail_addresses(capsys: pytest.CaptureFixture[str]) -> None:
    demo.step('registered  +6281234567890  {"to": "6281234567890", "email": "siti.demo1@example.co.id"}')
    shown = capsys.readouterr().out
    assert "1234567" not in shown
    assert "siti.demo1@" not in shown
    assert "+6281" in shown


def test_the_demo_schedules_the_survey_in_the_future() -> None:
    from datetime import UTC, datetime

    assert datetime.fromisoformat(demo.survey_time()) > datetime.now(UTC)


def test_make_migrate_finds_the_make_run_database_by_itself(tmp_path: Path) -> None:
    """No DATABASE_URL: the embedded server in DEVSTACK_DIR/pgdata, started for the command and stopped after."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"DEVSTACK_DIR": str(tmp_path)}

    def migrate(action: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "devstack.migrate", action]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    nothing = migrate("verify")
    assert nothing.returncode == 2
    assert "run `make run` once, or set DATABASE_URL" in nothing.stderr
    made = [sys.executable, "-c", "from devstack import stack; stack.embedded_database()"]
    for _ in range(2):  # the wheel gives pg_ctl 10 s to start: a loaded machine may need a second try
        started = subprocess.run(made, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        if started.returncode == 0:
            break
    assert started.returncode == 0, started.stderr
    assert json.loads(migrate("apply").stdout)["ok"] is True
    verified = migrate("verify")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["pending"] == []
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists(), "the server it started is stopped again"


def test_the_stacks_functions_connect_as_the_runtime_role(migrated_db: str, tmp_path: Path) -> None:
    """`make run` connects the app as AWS does: rows yes, schema no (migrate keeps the owner's URL)."""
    url = stack.runtime_url(migrated_db, stack.runtime_password(tmp_path))
    assert stack.runtime_url(migrated_db, stack.runtime_password(tmp_path)) == url, "made once, kept"
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (stack.RUNTIME_LOGIN,)
        assert conn.execute("SELECT count(*) FROM customer_registrations").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE intruder (id int)")
