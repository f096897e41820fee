"""scripts/deploy.py for real, in process: the commands it runs, the AWS calls it makes (botocore's Stubber
checks each call's name and parameters against the service's model), what it prints, what it exits with.

The commands (``chalice package``, ``aws cloudformation package`` and ``deploy``) go to a recording runner;
the calls to stubbed boto3 clients; ``GET /packages`` to a real HTTP server on loopback.
"""

import io
import json
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import deploy

REGION = "ap-southeast-3"
STACK = "registration-backend-dev"
MIGRATE = "registration-backend-dev-Migrate-AbC123"
REFUSED = (
    "refused, nothing applied: the release still running would fail: customer_registrations rejects status "
    "'survey_completed': valid_status does not allow it, after 012_narrow.sql; split the release"
)
DRIFT = {
    "kind": "enum_check_mismatch",
    "message": "customer_registrations rejects status 'customer_created': valid_status does not allow it",
    "fix_sql": "ALTER TABLE customer_registrations DROP CONSTRAINT valid_status, ADD CONSTRAINT valid_status …",
}


@dataclass
class Runner:
    """Records each command; answers ``fail_on`` (a word of the command) with 255, everything else with 0."""

    fail_on: str | None = None
    commands: list[list[str]] = field(default_factory=list)

    def __call__(self, command: Sequence[str]) -> int:
        self.commands.append(list(command))
        return 255 if self.fail_on and self.fail_on in command else 0

    def steps(self) -> list[str]:
        return [" ".join(c[1:3]) if c[0] == "aws" else Path(c[1]).name for c in self.commands]


@dataclass
class Aws:
    """Stubbed clients of the three services scripts/deploy calls; every stubbed call must be made."""

    clients: dict[str, Any]
    stubs: dict[str, Stubber]

    def __call__(self, service: str) -> Any:
        return self.clients[service]

    def add(self, service: str, operation: str, response: dict[str, Any], params: dict[str, Any]) -> None:
        self.stubs[service].add_response(operation, response, params)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Aws]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    for name in ("DEPLOY_BUCKET", "ALARM_EMAIL", "DB_INSTANCE_ID", "AWS_REGION", "CLOUDFORMATION_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("DEPLOY_OUT", str(tmp_path / "out"))
    clients = {name: boto3.client(name, region_name=REGION) for name in ("cloudformation", "lambda", "logs")}
    stubs = {name: Stubber(client) for name, client in clients.items()}
    for stub in stubs.values():
        stub.activate()
    yield Aws(clients, stubs)
    for stub in stubs.values():
        stub.assert_no_pending_responses()
        stub.deactivate()


@pytest.fixture
def api() -> Iterator[str]:
    """The stack's API on loopback: ``GET /api/packages`` answers one package; its EndpointURL."""

    class Packages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps([{"id": "0b5e…", "name": "Rumah"}]).encode() if self.path == "/api/packages" else b"{}"
            self.send_response(200 if self.path == "/api/packages" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Packages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/"
    server.shutdown()


def migrate_is(aws: Aws) -> None:
    detail = {
        "StackResourceDetail": {
            "LogicalResourceId": "Migrate",
            "PhysicalResourceId": MIGRATE,
            "ResourceType": "AWS::Serverless::Function",
            "LastUpdatedTimestamp": "2026-12-05T08:00:00Z",
            "ResourceStatus": "UPDATE_COMPLETE",
        }
    }
    aws.add("cloudformation", "describe_stack_resource", detail, {"StackName": STACK, "LogicalResourceId": "Migrate"})


def verify_answers(aws: Aws, payload: dict[str, Any], function_error: str | None = None) -> None:
    """The stack's migrate function is found, and answers the verify invoke with ``payload``."""
    migrate_is(aws)
    data = json.dumps(payload).encode()
    answer: dict[str, Any] = {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(data), len(data))}
    if function_error:
        answer["FunctionError"] = function_error
    aws.add("lambda", "invoke", answer, {"FunctionName": MIGRATE, "Payload": b'{"action": "verify"}'})


def endpoint_is(aws: Aws, url: str) -> None:
    stack = {
        "StackName": STACK,
        "CreationTime": "2026-12-01T00:00:00Z",
        "StackStatus": "UPDATE_COMPLETE",
        "Outputs": [
            {"OutputKey": "MigrateFunctionName", "OutputValue": MIGRATE},
            {"OutputKey": "EndpointURL", "OutputValue": url},
        ],
    }
    aws.add("cloudformation", "describe_stacks", {"Stacks": [stack]}, {"StackName": STACK})


def ok_report() -> dict[str, Any]:
    return {"ok": True, "action": "verify", "applied": [], "pending": [], "checked": ["a", "b", "c"], "drift": []}


def drift_raised() -> dict[str, Any]:
    """What Lambda returns when migrate raises MigrationError carrying the report."""
    report = {**ok_report(), "ok": False, "drift": [DRIFT]}
    return {"errorMessage": json.dumps(report, indent=2), "errorType": "MigrationError", "stackTrace": ["…"]}


def test_a_deploy_runs_each_step_in_order_then_verifies_and_gets_the_packages(
    aws: Aws, api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.add(
        "cloudformation",
        "list_exports",
        {"Exports": [{"Name": "registration-dev-DeployBucketName", "Value": "registration-dev-deploy-4f2a"}, ROLE]},
        {},
    )
    verify_answers(aws, ok_report())
    endpoint_is(aws, api)
    monkeypatch.setenv("DB_INSTANCE_ID", "registration-dev")
    runner = Runner()

    assert deploy.main(["--stage", "dev"], runner, aws) == 0

    assert runner.steps() == [
        "rds_ca_bundle.py",
        "package.py",
        "cloudformation package",
        "preflight.py",
        "cloudformation deploy",
    ]
    bundle, package, upload, preflight, stack = runner.commands
    assert bundle[1:] == ["scripts/rds_ca_bundle.py"]
    assert package[1:] == ["scripts/package.py", "--stage", "dev", "--out", str(tmp_path / "out")]
    assert upload[upload.index("--s3-bucket") + 1] == "registration-dev-deploy-4f2a"
    assert preflight[-2:] == ["--db-instance", "registration-dev"]
    assert stack[stack.index("--stack-name") + 1] == STACK
    assert stack[stack.index("--role-arn") + 1] == ROLE["Value"]  # the deploy role only passes it
    out = capsys.readouterr().out
    assert "verify: ok: 3 checks, no drift" in out
    assert f"GET {api}packages: 200, 1 active package(s)" in out


ROLE = {
    "Name": "registration-dev-CloudFormationRoleArn",
    "Value": "arn:aws:iam::210987654321:role/registration-foundation-dev-CloudFormationExecutionRole",
}


def test_without_the_foundations_cloudformation_role_the_stack_is_not_deployed(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.add("cloudformation", "list_exports", {"Exports": [{"Name": "other-export", "Value": "x"}]}, {})
    runner = Runner()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEPLOY_BUCKET", "artifacts-dev")
        assert deploy.main(["--stage", "dev", "--prebuilt"], runner, aws) == 2
    assert runner.steps() == ["cloudformation package", "preflight.py"]
    error = capsys.readouterr().err
    assert "no export registration-dev-CloudFormationRoleArn" in error
    assert "or set CLOUDFORMATION_ROLE_ARN" in error


def test_the_pipeline_deploys_its_artifact_and_a_failed_step_stops_before_the_stack(aws: Aws) -> None:
    """``--prebuilt``: no package step; a failed preflight deploys nothing and makes no AWS call of ours."""
    runner = Runner(fail_on="scripts/preflight.py")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEPLOY_BUCKET", "artifacts-dev")
        assert deploy.main(["--stage", "dev", "--prebuilt"], runner, aws) == 1
    assert runner.steps() == ["cloudformation package", "preflight.py"]


def test_without_a_bucket_or_the_foundations_export_nothing_runs(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    aws.add("cloudformation", "list_exports", {"Exports": [{"Name": "other-export", "Value": "x"}]}, {})
    runner = Runner()
    assert deploy.main(["--stage", "dev"], runner, aws) == 2
    assert runner.commands == []
    error = capsys.readouterr().err
    assert "no export registration-dev-DeployBucketName" in error
    assert "registration-foundation-dev" in error
    assert "DEPLOY_BUCKET" in error


def test_a_bucket_lookup_without_credentials_says_what_to_do(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    aws.stubs["cloudformation"].add_client_error("list_exports", "AccessDenied", "not authorized: ListExports")
    assert deploy.main(["--stage", "prod"], Runner(), aws) == 2
    error = capsys.readouterr().err
    assert "could not read the exports" in error
    assert "not authorized: ListExports" in error
    assert "or set DEPLOY_BUCKET" in error


def stack_event(
    logical_id: str, status: str, reason: str = "", kind: str = "Custom::SchemaMigration"
) -> dict[str, Any]:
    return {
        "StackId": f"arn:aws:cloudformation:{REGION}:111122223333:stack/{STACK}/1",
        "EventId": f"{logical_id}-{status}",
        "StackName": STACK,
        "LogicalResourceId": logical_id,
        "ResourceType": kind,
        "Timestamp": "2026-12-05T08:00:00Z",
        "ResourceStatus": status,
        "ResourceStatusReason": reason,
    }


def test_a_refused_gate_prints_its_reason_from_the_stack_events_and_its_report_from_the_log(
    aws: Aws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [  # newest first, as describe-stack-events answers
        stack_event(STACK, "UPDATE_ROLLBACK_IN_PROGRESS", "failed: [SchemaMigration]", "AWS::CloudFormation::Stack"),
        stack_event("SchemaMigration", "UPDATE_FAILED", REFUSED),
        stack_event("SchemaMigration", "UPDATE_IN_PROGRESS"),
        stack_event("Migrate", "UPDATE_COMPLETE", kind="AWS::Lambda::Function"),
        stack_event(STACK, "UPDATE_IN_PROGRESS", "User Initiated", "AWS::CloudFormation::Stack"),
        stack_event("SchemaMigration", "UPDATE_FAILED", "an older failure"),
    ]
    aws.add("cloudformation", "describe_stack_events", {"StackEvents": events}, {"StackName": STACK})
    migrate_is(aws)
    line = '{"migrate_gate": {"ok": false, "outcome": "refused"}}'
    aws.add(
        "logs",
        "filter_log_events",
        {"events": [{"message": line + "\n"}]},
        {"logGroupName": f"/aws/lambda/{MIGRATE}", "filterPattern": "migrate_gate", "startTime": ANY},
    )
    runner = Runner(fail_on="deploy")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEPLOY_BUCKET", "artifacts-dev")
        patch.setenv("CLOUDFORMATION_ROLE_ARN", ROLE["Value"])
        assert deploy.main(["--stage", "dev", "--prebuilt"], runner, aws) == 1

    error = capsys.readouterr().err
    assert f"SchemaMigration UPDATE_FAILED: {REFUSED}" in error
    assert "an older failure" not in error
    assert "the schema gate refused" in error
    assert line in error
    assert error.index(REFUSED) < error.index(line)
    kept = json.loads((tmp_path / "out" / "stack-events.json").read_text())
    assert [e["ResourceStatus"] for e in kept["StackEvents"]][:2] == ["UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_FAILED"]
    assert runner.steps()[-1] == "cloudformation deploy", "nothing is invoked after a failed deploy"


def test_verify_fails_naming_each_drift_and_its_fix(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    verify_answers(aws, drift_raised(), "Unhandled")
    assert deploy.main(["--stage", "dev", "--verify-only"], Runner(), aws) == 1
    error = capsys.readouterr().err
    assert f"verify: enum_check_mismatch: {DRIFT['message']}" in error
    assert f"fix: {DRIFT['fix_sql']}" in error
    assert "registration-backend-dev is deployed but its database has drifted" in error


def test_verify_of_a_clean_database_gets_the_packages(aws: Aws, api: str) -> None:
    verify_answers(aws, ok_report())
    endpoint_is(aws, api)
    assert deploy.main(["--stage", "dev", "--verify-only"], Runner(), aws) == 0


def test_a_stack_whose_api_does_not_answer_fails_the_verify(aws: Aws, api: str) -> None:
    verify_answers(aws, ok_report())
    endpoint_is(aws, api.replace("/api/", "/elsewhere/"))
    assert deploy.main(["--stage", "dev", "--verify-only"], Runner(), aws) == 1


@pytest.mark.parametrize(
    ("payload", "function_error", "said"),
    [
        (json.dumps(ok_report()).encode(), None, "ok: 3 checks, no drift"),
        (json.dumps(drift_raised()).encode(), "Unhandled", "1 drift(s) found"),
        (json.dumps({**ok_report(), "ok": False, "drift": [DRIFT]}).encode(), None, "1 drift(s) found"),
        (
            json.dumps(
                {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 300.00 seconds"}
            ).encode(),
            "Unhandled",
            "migrate failed (Sandbox.Timedout): Task timed out after 300.00 seconds",
        ),
        (b"<html>", None, "migrate answered something that is not JSON"),
        (b'{"statusCode": 200}', None, "migrate answered without a report"),
    ],
)
def test_the_verdict_is_ok_only_for_a_clean_report(payload: bytes, function_error: str | None, said: str) -> None:
    verdict = deploy.verdict(payload, function_error)
    assert verdict.ok == (said.startswith("ok")), verdict
    assert verdict.lines[0].startswith(said), verdict
