"""The hourly drift watch: verify's report in the log, and ``SchemaDrift`` as an Embedded Metric Format line."""

import io
import json
from typing import Any

import psycopg
import pytest
from chalice.test import Client

from chalicelib.migrate import run, watch
from chalicelib.platform import emf
from tests.conftest import MIGRATIONS
from tests.support.runtime import new_container


def emf_metrics(line: str) -> dict[str, Any]:
    """The metrics an EMF line carries, after checking it against the format's rules."""
    document = json.loads(line)
    aws = document["_aws"]
    assert isinstance(aws["Timestamp"], int)
    assert aws["Timestamp"] > 1_600_000_000_000
    found: dict[str, Any] = {}
    for directive in aws["CloudWatchMetrics"]:
        assert directive["Namespace"] == "RegistrationBackend"
        for dimension_set in directive["Dimensions"]:
            assert all(isinstance(document[name], str) for name in dimension_set), dimension_set
        for metric in directive["Metrics"]:
            assert isinstance(document[metric["Name"]], int | float)
            assert metric.get("Unit", "None") in {"Count", "Milliseconds", "None"}
            found[metric["Name"]] = document[metric["Name"]]
        found["dimensions"] = {name: document[name] for names in directive["Dimensions"] for name in names}
    return found


def _watch(url: str) -> tuple[dict[str, Any], list[str]]:
    out = io.StringIO()
    result = watch.watch(lambda: run("verify", url, migrations_dir=MIGRATIONS), stream=out)
    return result, out.getvalue().splitlines()


def test_a_clean_database_is_zero_drift(migrated_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGE", "prod")
    result, lines = _watch(migrated_db)
    assert result == {"ok": True, "drift": 0}
    assert json.loads(lines[0])["schema_drift_watch"]["ok"] is True
    assert emf_metrics(lines[-1]) == {"SchemaDrift": 0, "dimensions": {"Stage": "prod"}}


def test_a_hand_edit_is_counted(migrated_db: str) -> None:
    with psycopg.connect(migrated_db) as conn:
        conn.execute("ALTER TABLE customer_registrations DROP CONSTRAINT valid_status")
        conn.execute("DROP INDEX customer_registrations_active_email_key")
    result, lines = _watch(migrated_db)
    report = json.loads(lines[0])["schema_drift_watch"]
    assert result["drift"] == len(report["drift"]) >= 2
    assert emf_metrics(lines[-1])["SchemaDrift"] == result["drift"]


def test_the_scheduled_function_runs_it(migrated_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    new_container(monkeypatch)
    from app import app

    try:
        with Client(app, stage_name="dev") as client:
            event = client.events.generate_cw_event(
                source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
            )
            assert client.lambda_.invoke("schema_drift_watch", event).payload == {"ok": True, "drift": 0}
    finally:
        new_container(monkeypatch)


def test_the_emf_writer_takes_several_metrics_and_properties(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGE", "dev")
    lines: list[str] = []
    with emf.invocation("api_handler", write=lines.append, correlation_id="abc"):
        emf.count("CustomerCreated")
        emf.count("RegistrationCreated", 2)
    [line] = lines
    assert emf_metrics(line) == {"CustomerCreated": 1, "RegistrationCreated": 2, "dimensions": {"Stage": "dev"}}
    assert json.loads(line)["correlation_id"] == "abc"
    assert "\n" not in line
