"""Metrics as the code really writes them: one EMF line per invocation, and every alarm on a metric the code emits.

The lines are read from standard output, where Lambda's runtime sends them to CloudWatch Logs.
"""

import importlib.util
import json
import uuid
from collections import Counter
from typing import Any

import boto3
import psycopg
import pytest
from chalice.test import Client

from chalicelib.message_templates import TEMPLATE_BY_NAME
from chalicelib.platform import emf
from devstack.whatsapp import FakeWhatsApp, Reply
from tests.conftest import ROOT
from tests.integration.test_end_to_end import app_whatsapp, approve, texts, worker
from tests.support import sqs_events
from tests.support.api import post, register, registration_body, token
from tests.support.runtime import new_container

__all__ = ["app_whatsapp"]  # a fixture

_spec = importlib.util.spec_from_file_location("observability", ROOT / "scripts" / "observability.py")
assert _spec is not None
assert _spec.loader is not None
observability = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(observability)


def documents(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return emf.parse(capsys.readouterr().out)


def metric_names(document: dict[str, Any]) -> set[str]:
    return {m["Name"] for d in document["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


def run_every_flow(api_client: Client, package: dict[str, Any], app_whatsapp: FakeWhatsApp, queue_url: str) -> None:
    """A customer created; a worker batch with a bad body; WhatsApp refusing one message and dropping another."""
    registration = register(api_client, package)
    approve(api_client, registration, texts(app_whatsapp.delivered[0])[0])
    # Its phone again: a nameless 409, and the registrant hears the status on their phone.
    again = post(api_client, "/registrations", registration_body(package, phone=registration["phone"]))
    assert again.status_code == 409
    assert post(api_client, f"/registrations/{registration['id']}/approve", None, token("approver")).status_code == 409
    response = post(api_client, f"/registrations/{registration['id']}/create-customer", None, token("approver"))
    assert response.status_code == 202
    [message] = boto3.client("sqs").receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"]
    bad = sqs_events.record('{"type": "create_customer"}')
    assert len(worker(api_client, sqs_events.from_received(message), bad)) == 1
    app_whatsapp.queue(Reply.error(131026), Reply.dropped())
    for _ in range(2):
        register(api_client, package)


def test_each_invocation_writes_one_line_with_all_it_counted(
    api_client: Client,
    package: dict[str, Any],
    app_whatsapp: FakeWhatsApp,
    queue_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    registration = register(api_client, package)
    [created] = documents(capsys)
    assert created["function"] == "api_handler"
    assert (created["RegistrationCreated"], created["NotificationSent.registration_otp"]) == (1, 1)
    assert isinstance(created["WhatsAppLatency"], float)
    assert created["correlation_id"]

    approve(api_client, registration, texts(app_whatsapp.delivered[0])[0])
    assert [d["function"] for d in documents(capsys)] == ["api_handler"] * 4, "one line per request"
    assert post(api_client, f"/registrations/{registration['id']}/approve", None, token("approver")).status_code == 409
    [refused] = documents(capsys)
    assert refused["TransitionRefused"] == 1

    post(api_client, f"/registrations/{registration['id']}/create-customer", None, token("approver"))
    capsys.readouterr()
    [message] = boto3.client("sqs").receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"]
    unknown = sqs_events.record(sqs_events.create_customer_body(str(uuid.uuid4())))
    bad = sqs_events.record("not json")
    assert len(worker(api_client, sqs_events.from_received(message), unknown, bad)) == 2
    [batch] = documents(capsys)
    assert batch["function"] == "customer_worker"
    assert {name: batch[name] for name in metric_names(batch) if name != "WhatsAppLatency"} == {
        "CustomerCreated": 1,
        "WorkerRecordFailed": 2,
        "WorkerRecordFailed.unknown_registration": 1,
        "WorkerRecordFailed.bad_body": 1,
        "NotificationSent": 1,
        "NotificationSent.customer_created": 1,
    }
    assert batch["Stage"] == "local"
    assert batch["correlation_id"] == message["MessageAttributes"]["correlation_id"]["StringValue"]
    assert batch["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stage"]]


def test_an_invocation_that_counts_nothing_writes_no_line(
    api_client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert api_client.http.get("/packages").status_code == 200
    assert documents(capsys) == []


def test_every_alarm_watches_a_metric_the_code_emits(
    api_client: Client,
    package: dict[str, Any],
    app_whatsapp: FakeWhatsApp,
    queue_url: str,
    capsys: pytest.CaptureFixture[str],
    migrated_db: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    capsys.readouterr()
    run_every_flow(api_client, package, app_whatsapp, queue_url)
    event = api_client.events.generate_cw_event("Scheduled Event", "aws.events", {}, [])
    # The drift watch connects as the schema owner (it replays the migrations into a scratch database).
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    new_container(monkeypatch)
    assert api_client.lambda_.invoke("schema_drift_watch", event).payload == {"ok": True, "drift": 0}
    lines = documents(capsys)
    emitted = Counter(name for document in lines for name in metric_names(document))
    dimension_sets = {
        tuple(s) for d in lines for directive in d["_aws"]["CloudWatchMetrics"] for s in directive["Dimensions"]
    }
    namespaces = {directive["Namespace"] for d in lines for directive in d["_aws"]["CloudWatchMetrics"]}
    assert namespaces == {"RegistrationBackend"}

    alarms = observability.alarms({"Resources": {}}, "local")
    ours = {
        name: a["Properties"] for name, a in alarms.items() if a["Properties"].get("Namespace") == "RegistrationBackend"
    }
    watched = {a["MetricName"] for a in ours.values()}
    assert watched == {"WorkerRecordFailed", "NotificationFailed", "NotificationUnknown", "SchemaDrift"}
    assert watched <= set(emitted), f"alarms on metrics never emitted: {watched - set(emitted)}"
    for alarm in ours.values():
        assert (tuple(d["Name"] for d in alarm["Dimensions"]),) <= tuple(dimension_sets)


def test_the_dashboard_breakdowns_are_what_the_code_counts(
    api_client: Client,
    package: dict[str, Any],
    app_whatsapp: FakeWhatsApp,
    queue_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    run_every_flow(api_client, package, app_whatsapp, queue_url)
    emitted = {name for document in documents(capsys) for name in metric_names(document)}
    dashboard = observability.dashboard({"Resources": {}}, "local", tuple(TEMPLATE_BY_NAME))
    body = json.loads(dashboard["Properties"]["DashboardBody"]["Fn::Sub"][0])
    on_dashboard = {
        m[1]
        for w in body["widgets"]
        if w["type"] == "metric"
        for m in w["properties"]["metrics"]
        if m[0] == "RegistrationBackend"
    }
    # Everything this run counted is on the dashboard (WhatsAppLatency as its p50 and p99).
    assert emitted <= on_dashboard, emitted - on_dashboard
    flow = {"RegistrationCreated", "TransitionApplied.approve", "CustomerCreated", "NotificationSent.customer_created"}
    trouble = {"WorkerRecordFailed.bad_body", "NotificationFailed.registration_otp", "TransitionRefused"}
    assert flow | trouble | {"NotificationUnknown.registration_otp"} <= emitted


def test_the_sender_refuses_a_row_that_does_not_fit_its_template(
    api_client: Client, app_whatsapp: FakeWhatsApp, migrated_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        for template, components in (("customer_created", [{"type": "body", "parameters": []}]), ("no_such", [])):
            conn.execute(
                "INSERT INTO notification_outbox (dedupe_key, recipient, template, payload) VALUES (%s, %s, %s, %s)",
                (
                    f"test:{uuid.uuid4()}",
                    "+6281234500001",
                    template,
                    json.dumps({"components": components, "language": "id"}),
                ),
            )
    capsys.readouterr()
    api_client.lambda_.invoke(
        "send_notifications", api_client.events.generate_cw_event("Scheduled Event", "aws.events", {}, [])
    )
    assert app_whatsapp.requests == []
    with psycopg.connect(migrated_db) as conn:
        errors: dict[str, str] = dict(
            conn.execute("SELECT template, last_error FROM notification_outbox WHERE status = 'failed'").fetchall()
        )
    assert errors == {
        "customer_created": "does not fit template 'customer_created': 0 body parameters, the template has 3",
        "no_such": "does not fit template 'no_such': no such template",
    }
    [line] = documents(capsys)
    assert (line["NotificationFailed.customer_created"], line["NotificationFailed.no_such"]) == (1, 1)
    assert "WhatsAppLatency" not in line


def test_every_message_the_code_sends_fits_its_template(
    api_client: Client, package: dict[str, Any], app_whatsapp: FakeWhatsApp, queue_url: str
) -> None:
    run_every_flow(api_client, package, app_whatsapp, queue_url)
    sent = [request.body["template"] for request in app_whatsapp.requests]
    assert {template["name"] for template in sent} == set(TEMPLATE_BY_NAME)
    for template in sent:
        problems = TEMPLATE_BY_NAME[template["name"]].problems(template["components"], template["language"]["code"])
        assert problems == [], template["name"]
