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


def test_the_dry_run_packages_deploys_then_runs_the_migrate_gate() -> None:
    result = deploy("--dry-run", "--stage", "prod", DEPLOY_BUCKET="artifacts-prod")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    steps = [
        "scripts/package.py --stage prod",
        "aws cloudformation package",
        "aws cloudformation deploy",
        "aws cloudformation describe-stacks",
        "aws lambda invoke",
        "scripts/migrate_gate.py",
    ]
    where = [next(i for i, line in enumerate(lines) if step in line) for step in steps]
    assert where == sorted(where), lines
    package, upload, stack, outputs, invoke, gate = (lines[i] for i in where)
    assert "--merge-template" not in package, "scripts/package.py brings the merge template itself"
    assert "--s3-bucket artifacts-prod" in upload
    assert "--stack-name registration-backend-prod" in stack
    assert "CAPABILITY_IAM" in stack
    assert "MigrateFunctionName" in outputs
    assert """--payload \\{\\"action\\":\\ \\"apply\\"\\}""" in invoke
    assert "migrate-report.json" in invoke
    assert "migrate-report.json" in gate


def test_a_real_run_needs_a_bucket_and_calls_nothing_without_it() -> None:
    result = deploy("--stage", "dev")
    assert result.returncode != 0
    assert "DEPLOY_BUCKET" in result.stderr
    assert "aws " not in result.stdout


@pytest.mark.parametrize("args", [["--stage", "staging"], ["--bogus"]])
def test_bad_usage_is_exit_2(args: list[str]) -> None:
    assert deploy("--dry-run", *args).returncode == 2


def gate(tmp_path: Path, invoke: dict[str, object], payload: object) -> subprocess.CompletedProcess[str]:
    (tmp_path / "invoke.json").write_text(json.dumps(invoke))
    (tmp_path / "payload.json").write_text(json.dumps(payload))
    command = [sys.executable, "scripts/migrate_gate.py", str(tmp_path / "invoke.json"), str(tmp_path / "payload.json")]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30)


def test_the_gate_passes_an_ok_report(tmp_path: Path) -> None:
    result = gate(tmp_path, {"StatusCode": 200}, {"ok": True, "action": "apply", "applied": [], "drift": []})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"] is True


def test_the_gate_stops_on_a_function_error_and_prints_the_report(tmp_path: Path) -> None:
    report = {"ok": False, "drift": [{"kind": "check_rejects_value", "message": "rejects 'customer_created'"}]}
    payload = {"errorMessage": json.dumps(report), "errorType": "MigrationError"}
    result = gate(tmp_path, {"StatusCode": 200, "FunctionError": "Unhandled"}, payload)
    assert result.returncode == 1
    assert "check_rejects_value" in result.stderr
    assert "MigrationError" in result.stderr


def test_the_gate_stops_when_ok_is_not_true(tmp_path: Path) -> None:
    result = gate(tmp_path, {"StatusCode": 200}, {"ok": False, "drift": [{"kind": "migration_pending"}]})
    assert result.returncode == 1
    assert "migration_pending" in result.stderr
