"""scripts/deploy: the pipeline's commands in order, and the migrate gate that stops it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def deploy(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "DEPLOY_BUCKET"}
    environment.update({"PYTHON": sys.executable, **env})
    return subprocess.run(
        ["bash", "scripts/deploy", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def test_the_dry_run_packages_uploads_and_deploys_with_the_gate_inside() -> None:
    result = deploy("--dry-run", "--stage", "prod", DEPLOY_BUCKET="artifacts-prod")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    steps = [
        "scripts/package.py --stage prod",
        "aws cloudformation package",
        "scripts/preflight.py --stage prod",
        "aws cloudformation deploy",
        "# on failure:",
        "aws cloudformation describe-stack-events",
        "scripts/gate_report.py",
        "aws logs tail",
    ]
    where = [next(i for i, line in enumerate(lines) if step in line) for step in steps]
    assert where == sorted(where), lines
    package, upload, stack = (lines[i] for i in (where[0], where[1], where[3]))
    assert "--merge-template" not in package, "scripts/package.py brings the merge template itself"
    assert "--s3-bucket artifacts-prod" in upload
    assert "--stack-name registration-backend-prod" in stack
    assert "CAPABILITY_IAM" in stack
    assert "--parameter-overrides" not in stack
    # No step after the deploy changes anything: the gate ran inside it.
    assert not [line for line in lines if "lambda invoke" in line]


def test_an_alarm_email_subscribes_to_the_alarm_topic() -> None:
    result = deploy("--dry-run", ALARM_EMAIL="oncall@example.com")
    [stack] = [line for line in result.stdout.splitlines() if "aws cloudformation deploy" in line]
    assert stack.endswith("--parameter-overrides AlarmEmail=oncall@example.com")


def test_a_real_run_needs_a_bucket_and_calls_nothing_without_it() -> None:
    result = deploy("--stage", "dev")
    assert result.returncode != 0
    assert "DEPLOY_BUCKET" in result.stderr
    assert "aws " not in result.stdout


@pytest.mark.parametrize("args", [["--stage", "staging"], ["--bogus"]])
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


def test_a_failed_deploy_prints_the_gates_reason_and_its_log(tmp_path: Path) -> None:
    """The real path, with an ``aws`` on PATH that answers as a refused gate would (and a no-op package step)."""
    events = stack_events(
        stack("UPDATE_IN_PROGRESS", "User Initiated"),
        event("SchemaMigration", "UPDATE_FAILED", REFUSED, "Custom::SchemaMigration"),
    )
    (tmp_path / "events.json").write_text(json.dumps(events))
    calls = tmp_path / "calls.txt"
    fake_aws = tmp_path / "bin" / "aws"
    fake_aws.parent.mkdir()
    fake_aws.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$*" >> {calls}\n'
        'case "$1 $2" in\n'
        '  "cloudformation deploy") echo "Failed to create/update the stack" >&2; exit 255 ;;\n'
        f'  "cloudformation describe-stack-events") cat {tmp_path / "events.json"} ;;\n'
        '  "cloudformation describe-stack-resource") echo registration-backend-dev-Migrate-AbC123 ;;\n'
        '  "logs tail") echo \'{"migrate_gate": {"ok": false, "outcome": "refused"}}\' ;;\n'
        "esac\n"
    )
    fake_python = tmp_path / "bin" / "python"
    fake_python.write_text(
        f'#!/usr/bin/env bash\ncase "$1" in scripts/package.py|scripts/preflight.py) exit 0 ;; esac\n'
        f'exec {sys.executable} "$@"\n'
    )
    for script in (fake_aws, fake_python):
        script.chmod(0o755)
    path = f"{fake_aws.parent}:{os.environ['PATH']}"

    out = tmp_path / "out"
    result = deploy(
        "--stage", "dev", DEPLOY_BUCKET="artifacts-dev", PATH=path, PYTHON=str(fake_python), DEPLOY_OUT=str(out)
    )

    assert result.returncode == 1
    assert f"SchemaMigration UPDATE_FAILED: {REFUSED}" in result.stderr
    assert '{"migrate_gate": {"ok": false, "outcome": "refused"}}' in result.stderr
    made = calls.read_text().splitlines()
    assert [line.split()[:2] for line in made] == [
        ["cloudformation", "package"],
        ["cloudformation", "deploy"],
        ["cloudformation", "describe-stack-events"],
        ["cloudformation", "describe-stack-resource"],
        ["logs", "tail"],
    ]
    assert "/aws/lambda/registration-backend-dev-Migrate-AbC123" in made[-1]
    assert json.loads((out / "stack-events.json").read_text()) == events
