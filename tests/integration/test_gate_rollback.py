"""The schema gate under CloudFormation's real behaviour: rollbacks, timeouts, odd requests, a flaky PUT.

Driven through the ``migrate`` handler on the real migrations; a loopback HTTP
server stands in for the presigned ``ResponseURL``.  Where freezing matters, each
Lambda environment is a process of its own, stopped with SIGSTOP right after its
handler returns (what Lambda does to an environment between invocations).
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws
from moto.cloudformation.models import cloudformation_backends

from chalicelib.migrate import custom_resource, rollback
from chalicelib.migrate.runner import ADVISORY_LOCK_KEY
from chalicelib.platform import emf
from chalicelib.schema_contract import CONTRACT, WRITES, contract_data
from tests.conftest import ROOT
from tests.integration.test_schema_gate import Context, ResponseServer, history

CODE = json.dumps(contract_data(CONTRACT, WRITES))
REGION = "ap-southeast-3"
STACK_ID = f"arn:aws:cloudformation:{REGION}:123456789012:stack/registration-backend-dev/0f1e2d3c"


@pytest.fixture
def s3() -> Iterator[ResponseServer]:
    server = ResponseServer()
    yield server
    server.close()


def update(s3: ResponseServer, release: str, old_release: str | None, kind: str = "Update") -> dict[str, Any]:
    """A custom-resource request for ``release`` coming after ``old_release`` (the code's contract on both)."""

    def properties(name: str) -> dict[str, Any]:
        return {"ServiceToken": "arn:aws:lambda:…:function:migrate", "Release": name, "Contract": CODE}

    request = {
        "RequestType": kind,
        "ResponseURL": f"{s3.url}/cfn-response/{uuid.uuid4()}?X-Amz-Signature=x",
        "StackId": STACK_ID,
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "SchemaMigration",
        "ResourceType": "Custom::SchemaMigration",
        "PhysicalResourceId": custom_resource.PHYSICAL_ID,
        "ResourceProperties": properties(release),
    }
    if old_release is not None:
        request["OldResourceProperties"] = properties(old_release)
    return request


def no_stack(_stack_id: str) -> str | None:
    return None


def answer(s3: ResponseServer, request: dict[str, Any], migrations: Path, url: str, **kwargs: Any) -> dict[str, Any]:
    before = len(s3.puts)
    kwargs.setdefault("stack_status", no_stack)
    returned = custom_resource.handle(request, Context(), migrations_dir=migrations, database_url=url, **kwargs)
    assert len(s3.puts) == before + 1, "exactly one answer"
    assert s3.answers()[-1] == returned
    return returned


def with_file(base: Path, tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for source in base.iterdir():
        (folder / source.name).write_text(source.read_text())
    for file, sql in files.items():
        (folder / file).write_text(sql)
    return folder


def emf_lines(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for document in emf.parse(text):
        for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            values[metric["Name"]] = document[metric["Name"]]
    return values


@pytest.fixture
def accepted(s3: ResponseServer, migrated_db: str, migrations_copy: Path) -> str:
    """Release A, the code as it is, accepted by the gate (and so recorded)."""
    first = answer(s3, update(s3, "release-a", "release-before-a"), migrations_copy, migrated_db)
    assert first["Status"] == "SUCCESS", first["Reason"]
    return "release-a"


def test_a_rollback_after_a_release_that_migrated_succeeds_without_the_lock(
    s3: ResponseServer, migrated_db: str, migrations_copy: Path, accepted: str, tmp_path: Path, capsys: Any
) -> None:
    b = with_file(
        migrations_copy,
        tmp_path,
        "b",
        {"100_add_referral_code.sql": "ALTER TABLE customers ADD COLUMN referral_code text;\n"},
    )
    forward = answer(s3, update(s3, "release-b", accepted), b, migrated_db)
    assert forward["Status"] == "SUCCESS", forward["Reason"]
    assert "100_add_referral_code.sql" in forward["Reason"]
    capsys.readouterr()

    # A later resource failed: CloudFormation brings A back.  Another deploy holds the lock meanwhile.
    with psycopg.connect(migrated_db, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        started = time.monotonic()
        back = answer(s3, update(s3, accepted, "release-b"), migrations_copy, migrated_db)
        elapsed = time.monotonic() - started

    assert back["Status"] == "SUCCESS", back["Reason"]
    assert back["Reason"].startswith(f"rollback ({rollback.BY_RECORD}): nothing applied, no lock taken")
    assert "100_add_referral_code.sql" in back["Reason"], "the file this code does not know is reported"
    assert back["Data"]["Outcome"] == "rollback"
    assert back["Data"]["Applied"] == "0"
    assert int(back["Data"]["Drift"]) >= 1
    assert elapsed < 10, "never waits on the lock"
    out = capsys.readouterr().out
    assert emf_lines(out)["SchemaDrift"] == int(back["Data"]["Drift"])
    assert '"outcome": "rollback"' in out
    assert "100_add_referral_code.sql" in history(migrated_db), "nothing was undone"


def test_a_rollback_after_a_failed_concurrently_index_names_the_leftover(
    s3: ResponseServer, migrated_db: str, migrations_copy: Path, accepted: str, tmp_path: Path
) -> None:
    b = with_file(
        migrations_copy,
        tmp_path,
        "b",
        {
            "100_create_referral_codes.sql": "CREATE TABLE referral_codes (code text);\n",
            "101_add_referral_codes.sql": "INSERT INTO referral_codes VALUES ('dup'), ('dup');\n",
            "102_index_referral_codes.sql": (
                "-- migrate: no-transaction\n"
                "CREATE UNIQUE INDEX CONCURRENTLY referral_codes_code_key ON referral_codes (code);\n"
            ),
        },
    )
    forward = answer(s3, update(s3, "release-b", accepted), b, migrated_db)
    assert forward["Status"] == "FAILED"
    assert "102_index_referral_codes.sql failed" in forward["Reason"]

    back = answer(s3, update(s3, accepted, "release-b"), migrations_copy, migrated_db)

    assert back["Status"] == "SUCCESS", back["Reason"]
    assert "INVALID index referral_codes_code_key on referral_codes" in back["Reason"]
    assert "DROP INDEX CONCURRENTLY IF EXISTS referral_codes_code_key;" in back["Reason"]
    assert back["Data"]["Leftovers"] == "referral_codes_code_key"
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute("SELECT to_regclass('referral_codes_code_key') IS NOT NULL").fetchone() == (True,)


def test_a_rollback_over_hand_drift_that_predates_the_deploy_reports_it(
    s3: ResponseServer, migrated_db: str, migrations_copy: Path, accepted: str, tmp_path: Path, capsys: Any
) -> None:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("CREATE INDEX registrations_city_by_hand ON customer_registrations (city)")
    b = with_file(
        migrations_copy,
        tmp_path,
        "b",
        {"100_add_referral_code.sql": "ALTER TABLE customers ADD COLUMN referral_code text;\n"},
    )
    forward = answer(s3, update(s3, "release-b", accepted), b, migrated_db)
    assert forward["Status"] == "FAILED", "going forward, drift still fails the deploy"
    assert "registrations_city_by_hand" in forward["Reason"]
    capsys.readouterr()

    back = answer(s3, update(s3, accepted, "release-b"), migrations_copy, migrated_db)

    assert back["Status"] == "SUCCESS", back["Reason"]
    assert "registrations_city_by_hand" in back["Reason"]
    assert emf_lines(capsys.readouterr().out)["SchemaDrift"] >= 1


def test_an_older_release_than_the_previous_one_is_judged_as_a_forward_release(
    s3: ResponseServer, migrated_db: str, migrations_copy: Path, accepted: str
) -> None:
    assert answer(s3, update(s3, "release-b", accepted), migrations_copy, migrated_db)["Status"] == "SUCCESS"
    assert answer(s3, update(s3, "release-c", "release-b"), migrations_copy, migrated_db)["Status"] == "SUCCESS"

    redeploy = answer(s3, update(s3, accepted, "release-c"), migrations_copy, migrated_db)

    assert redeploy["Status"] == "SUCCESS"
    assert redeploy["Data"]["Outcome"] == "applied", "the full gate ran: not a rollback"


def test_the_rollback_of_a_stack_whose_database_does_not_answer_succeeds_with_drift_unknown(
    s3: ResponseServer, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    nowhere = "postgresql://postgres@127.0.0.1:1/registration"
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        template = '{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}'
        stack_id = cloudformation.create_stack(StackName="registration-backend-dev", TemplateBody=template)["StackId"]
        stack = cloudformation_backends["123456789012"][REGION].stacks[stack_id]

        stack.status = "UPDATE_IN_PROGRESS"
        forward = answer(
            s3,
            update(s3, "release-b", "release-a") | {"StackId": stack_id},
            ROOT / "migrations",
            nowhere,
            stack_status=rollback.stack_status,
        )
        stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
        back = answer(
            s3,
            update(s3, "release-a", "release-b") | {"StackId": stack_id},
            ROOT / "migrations",
            nowhere,
            stack_status=rollback.stack_status,
        )

    assert forward["Status"] == "FAILED", "a forward release still needs its database"
    assert back["Status"] == "SUCCESS", back["Reason"]
    assert back["Reason"].startswith(
        f"rollback ({rollback.BY_CLOUDFORMATION}): nothing applied, no lock taken; drift unknown"
    )
    assert "could not talk to the database" in back["Reason"]
    assert back["Data"] == {"Outcome": "rollback", "Applied": "0", "Drift": "unknown"}
    assert emf_lines(capsys.readouterr().out) == {"SchemaDriftUnknown": 1}


def test_an_unknown_request_type_fails_and_touches_no_database(
    s3: ResponseServer, migrated_db: str, migrations_copy: Path, tmp_path: Path
) -> None:
    b = with_file(
        migrations_copy,
        tmp_path,
        "b",
        {"100_add_referral_code.sql": "ALTER TABLE customers ADD COLUMN referral_code text;\n"},
    )
    before = history(migrated_db)

    failed = answer(s3, update(s3, "release-b", "release-a", kind="Replace"), b, migrated_db)

    assert failed["Status"] == "FAILED"
    assert failed["Reason"].startswith("unknown RequestType 'Replace'")
    assert history(migrated_db) == before


class FlakyS3:
    """Answers 500 to the first ``failures`` PUTs, then stores the rest."""

    def __init__(self, failures: int) -> None:
        self.tries: list[bytes] = []
        self.stored: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.tries.append(body)
                ok = len(outer.tries) > failures
                if ok:
                    outer.stored.append(body)
                self.send_response(200 if ok else 500)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"


def test_a_put_that_fails_twice_then_succeeds_gives_one_answer() -> None:
    flaky = FlakyS3(failures=2)
    try:
        request = {
            "RequestType": "Delete",
            "ResponseURL": f"{flaky.url}/r?X-Amz-Signature=x",
            "StackId": STACK_ID,
            "RequestId": "r-1",
            "LogicalResourceId": "SchemaMigration",
            "PhysicalResourceId": custom_resource.PHYSICAL_ID,
        }
        returned = custom_resource.handle(request, Context())
    finally:
        flaky.server.shutdown()
        flaky.server.server_close()
    assert len(flaky.tries) == 3
    assert len(flaky.stored) == 1
    assert json.loads(flaky.stored[0]) == returned
    assert returned["Status"] == "SUCCESS"


# One process per Lambda environment: the timer fires, the handler returns, the environment freezes.

ENVIRONMENT = """
import json, sys
import chalice.test
from chalice.test import Client
from app import app

class Clock(chalice.test.LambdaContext):  # the function's timeout, as Lambda's context counts it down
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs, max_runtime_ms=int(sys.argv[2]))

chalice.test.LambdaContext = Clock
with Client(app, stage_name="local") as client:
    payload = client.lambda_.invoke("migrate", json.loads(sys.argv[1])).payload
print("RETURNED", json.dumps(payload), flush=True)
sys.stdin.read()  # the environment stays (frozen, or warm) until the test lets it go
"""


class LambdaEnvironment:
    """A process that runs the migrate handler once, through chalice's test client, and then waits."""

    def __init__(self, request: dict[str, Any], database_url: str, migrations: Path, clock_ms: int = 20_000) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env |= {"DATABASE_URL": database_url, "MIGRATIONS_DIR": str(migrations), "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", ENVIRONMENT, json.dumps(request), str(clock_ms)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def returned(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        for line in self.process.stdout:  # the gate's report and metrics come first
            if line.startswith("RETURNED "):
                return dict(json.loads(line.removeprefix("RETURNED ")))
        raise AssertionError(f"the environment exited ({self.process.poll()}) without answering")

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def end(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def sessions_and_locks(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM pg_stat_activity"
            "         WHERE datname = current_database() AND pid <> pg_backend_pid()),"
            "       (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            "           AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_a_migration_that_outlives_the_lambda_clock_leaves_no_session_and_no_lock(
    s3: ResponseServer, migrated_db: str, migrations_copy: Path, accepted: str, tmp_path: Path
) -> None:
    slow = with_file(migrations_copy, tmp_path, "b", {"100_backfill_slowly.sql": "SELECT pg_sleep(60);\n"})
    environments: list[LambdaEnvironment] = []
    try:
        first = LambdaEnvironment(update(s3, "release-b", accepted), migrated_db, slow, clock_ms=3_000)
        environments.append(first)
        timed_out = first.returned()
        first.freeze()  # what Lambda does once the handler returned
        assert timed_out["Status"] == "FAILED"
        assert timed_out["Reason"].startswith("migrate did not finish within 2 s")
        assert sessions_and_locks(migrated_db) == (0, 0), "the frozen environment keeps no session, no lock"

        back = LambdaEnvironment(update(s3, accepted, "release-b"), migrated_db, migrations_copy)
        environments.append(back)
        assert back.returned()["Status"] == "SUCCESS"

        c = with_file(
            migrations_copy,
            tmp_path,
            "c",
            {"101_add_referral_code.sql": "ALTER TABLE customers ADD COLUMN referral_code text;\n"},
        )
        nxt = LambdaEnvironment(update(s3, "release-c", accepted), migrated_db, c)
        environments.append(nxt)
        forward = nxt.returned()
        assert forward["Status"] == "SUCCESS", forward["Reason"]
        assert "101_add_referral_code.sql" in forward["Reason"], "the next deploy got the lock and applied"
    finally:
        for environment in environments:
            environment.end()
    assert [put for put in s3.answers() if put["Status"] == "FAILED"] == [timed_out]
