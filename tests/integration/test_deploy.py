"""scripts/deploy: the commands in order (its dry run), and the gate's reason from the stack events."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def deploy(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("DEPLOY_BUCKET", "DEPLOY_OUT")}
    environment.update({"PYTHON": sys.executable, **env})
    return subprocess.run(
        ["bash", "scripts/deploy", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def test_the_dry_run_packages_uploads_deploys_with_the_gate_inside_then_verifies() -> None:
    result = deploy("--dry-run", "--stage", "prod", DEPLOY_BUCKET="artifacts-prod")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    steps = [
        "scripts/package.py --stage prod",
        "aws cloudformation package",
        "scripts/preflight.py --stage prod",
        "aws cloudformation deploy",
        "aws lambda invoke",
        "GET ",
        "# on failure:",
        "aws cloudformation describe-stack-events",
        "scripts/gate_report.py",
        "aws logs tail",
    ]
    where = [next(i for i, line in enumerate(lines) if step in line) for step in steps]
    assert where == sorted(where), lines
    package, upload, _, stack, invoke, smoke = (lines[i] for i in where[:6])
    assert "--merge-template" not in package, "scripts/package.py brings the merge template itself"
    assert "--s3-bucket artifacts-prod" in upload
    assert "--stack-name registration-backend-prod" in stack
    assert "CAPABILITY_IAM" in stack
    assert "--parameter-overrides" not in stack
    # After the deploy only reads: migrate's verify (which changes nothing), then the public list.
    assert "--function-name '<Migrate of registration-backend-prod>'" in invoke
    assert invoke.endswith("""--payload '{"action": "verify"}' verify.json""")
    assert smoke == "GET <EndpointURL of registration-backend-prod>packages"


def test_the_pipelines_dry_run_deploys_the_prebuilt_package_and_finds_the_bucket_by_export() -> None:
    result = deploy("--dry-run", "--stage", "dev", "--prebuilt", "--no-verify", DEPLOY_OUT="build/dev")
    assert result.returncode == 0, result.stderr
    assert "scripts/package.py" not in result.stdout
    [upload] = [line for line in result.stdout.splitlines() if "cloudformation package" in line]
    assert "--template-file build/dev/sam.json" in upload
    assert "--s3-bucket '<export registration-dev-DeployBucketName>'" in upload
    assert "lambda invoke" not in result.stdout
    only = deploy("--dry-run", "--stage", "dev", "--verify-only").stdout.splitlines()
    assert [line.split()[:3] for line in only] == [["aws", "lambda", "invoke"], ["GET", "<EndpointURL", "of"]]


def test_an_alarm_email_subscribes_to_the_alarm_topic() -> None:
    result = deploy("--dry-run", ALARM_EMAIL="oncall@example.com")
    [stack] = [line for line in result.stdout.splitlines() if "aws cloudformation deploy" in line]
    assert stack.endswith("--parameter-overrides AlarmEmail=oncall@example.com")


@pytest.mark.parametrize("args", [["--stage", "staging"], ["--bogus"], ["--no-verify", "--verify-only"]])
def test_bad_usage_is_exit_2(args: list[str]) -> None:
    assert deploy("--dry-run", *args).returncode == 2


def stack_events(*events: dict[str, str]) -> dict[str, object]:
    """describe-stack-events' output: newest first."""
    return {"StackEvents": list(reversed(events))}


def event(logical_id: str, status: str, reason: str = "", kind: str = "AWS::Lambda::Function") -> dict[str, str]:
    return {
        "LogicalResourceId": logical_id,
        "ResourceStatus": status,
        "ResourceStatusReason": reason,
        "ResourceType": kind,
    }


def stack(status: str, reason: str = "") -> dict[str, str]:
    return event("registration-backend-dev", status, reason, "AWS::CloudFormation::Stack")


def gate_report(tmp_path: Path, events: dict[str, object]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "events.json").write_text(json.dumps(events))
    command = [sys.executable, "scripts/gate_report.py", str(tmp_path / "events.json")]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30)


REFUSED = (
    "refused, nothing applied: the release still running would fail: customer_registrations rejects status "
    "'survey_completed': valid_status does not allow it, after 012_narrow.sql; split the release"
)


def test_the_report_names_the_gates_reason_from_the_latest_operation(tmp_path: Path) -> None:
    events = stack_events(
        stack("UPDATE_IN_PROGRESS", "User Initiated"),
        event("SchemaMigration", "UPDATE_FAILED", "an older failure"),
        stack("UPDATE_ROLLBACK_COMPLETE"),
        stack("UPDATE_IN_PROGRESS", "User Initiated"),
        event("Migrate", "UPDATE_COMPLETE"),
        event("SchemaMigration", "UPDATE_IN_PROGRESS", kind="Custom::SchemaMigration"),
        event("SchemaMigration", "UPDATE_FAILED", REFUSED, "Custom::SchemaMigration"),
        stack("UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to update: [SchemaMigration]."),
    )
    result = gate_report(tmp_path, events)
    assert result.returncode == 0, result.stderr
    assert f"SchemaMigration UPDATE_FAILED: {REFUSED}" in result.stderr
    assert "an older failure" not in result.stderr
    assert "run scripts/deploy again" in result.stderr


def test_a_failure_elsewhere_is_shown_and_is_not_the_gate(tmp_path: Path) -> None:
    events = stack_events(
        stack("UPDATE_IN_PROGRESS", "User Initiated"),
        event("AlarmTopic", "CREATE_FAILED", "not authorized to perform: SNS:CreateTopic"),
    )
    result = gate_report(tmp_path, events)
    assert result.returncode == 1
    assert "AlarmTopic CREATE_FAILED: not authorized" in result.stderr
