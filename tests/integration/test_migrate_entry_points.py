"""The pinned interfaces: the CLI's output and exit codes, the ``migrate`` Lambda, the RDS secret."""

import json
import subprocess
import sys
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws
from psycopg.conninfo import conninfo_to_dict

from chalicelib.migrate import MigrationError, run
from chalicelib.platform.settings import Settings
from tests.conftest import ROOT


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chalicelib.migrate", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_cli_exit_0_with_the_report_on_stdout(migrated_db: str) -> None:
    result = _cli("verify", "--database-url", migrated_db)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["ok"], report["action"], report["drift"]) == (True, "verify", [])
    assert {"applied", "pending", "checked"} <= report.keys()


def test_cli_exit_1_on_drift(empty_db: str) -> None:
    result = _cli("verify", "--database-url", empty_db)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert all({"kind", "message", "fix_sql"} == drift.keys() for drift in report["drift"])


def test_cli_exit_1_when_the_database_is_unreachable() -> None:
    result = _cli("verify", "--database-url", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    assert result.returncode == 1
    assert json.loads(result.stdout)["drift"][0]["kind"] == "database_unavailable"


def test_cli_exit_2_on_bad_usage() -> None:
    assert _cli("migrate-everything").returncode == 2
    assert _cli().returncode == 2


def test_cli_apply_progress_goes_to_stderr(empty_db: str) -> None:
    result = _cli("apply", "--database-url", empty_db)
    assert result.returncode == 0
    assert "applying 001_create_packages.sql" in result.stderr
    assert json.loads(result.stdout)["applied"][0] == "001_create_packages.sql"


def test_lambda_returns_the_report_when_ok(migrated_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    from app import app

    with Client(app, stage_name="dev") as client:
        report = client.lambda_.invoke("migrate", {"action": "verify"}).payload
    assert report["ok"] is True
    assert report["action"] == "verify"


def test_lambda_raises_with_every_drift_in_the_message(empty_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_db)
    from app import app

    with Client(app, stage_name="dev") as client, pytest.raises(MigrationError) as raised:
        client.lambda_.invoke("migrate", {"action": "verify"})
    report = json.loads(str(raised.value))
    assert report["ok"] is False
    assert "history_missing" in [drift["kind"] for drift in report["drift"]]


def test_lambda_refuses_an_unknown_action() -> None:
    from app import app

    with Client(app, stage_name="dev") as client, pytest.raises(ValueError, match="action must be one of"):
        client.lambda_.invoke("migrate", {"action": "drop-everything"})


def _rds_secret(server_url: str, dbname: str) -> dict[str, Any]:
    parts = conninfo_to_dict(server_url)
    return {
        "engine": "postgres",
        "username": parts.get("user", "postgres"),
        "password": parts.get("password") or "",
        "host": parts.get("host", "127.0.0.1"),
        "port": int(parts.get("port") or 5432),
        "dbname": dbname,
    }


def test_migrate_reads_its_credentials_from_the_rds_secret(
    migrated_db: str, server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-3")
    dbname = str(conninfo_to_dict(migrated_db)["dbname"])
    with mock_aws():
        secret = boto3.client("secretsmanager").create_secret(
            Name="registration-test-db", SecretString=json.dumps(_rds_secret(server_url, "postgres"))
        )
        # DB_NAME overrides what the secret says, as the pinned configuration allows.
        report = run("verify", settings=Settings(db_secret_arn=secret["ARN"], db_name=dbname))
    assert report["ok"], report["drift"]
    assert report["database"]["name"] == dbname


def test_no_database_configured_is_a_clear_failure() -> None:
    report = run("verify", settings=Settings())
    assert report["ok"] is False
    assert report["drift"][0]["kind"] == "configuration_invalid"
    assert "DATABASE_URL" in report["drift"][0]["message"]
