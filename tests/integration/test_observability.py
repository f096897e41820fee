"""The packaged template's alarms, dashboard and tracing (scripts/observability.py via `make package`)."""

import json
import re
from typing import Any

import pytest

from tests.integration.test_package import FUNCTIONS, package, resources, template

__all__ = ["package", "template"]  # the fixtures, shared with test_package (one package per run)

CUSTOM = "RegistrationBackend"


def alarms(template: dict[str, Any]) -> dict[str, Any]:
    return {name: r["Properties"] for name, r in resources(template).items() if r["Type"] == "AWS::CloudWatch::Alarm"}


@pytest.mark.slow
def test_every_alarm_notifies_the_alarm_topic(template: dict[str, Any]) -> None:
    found = resources(template)
    assert found["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    for name, alarm in alarms(template).items():
        assert {"Ref": "AlarmTopic"} in alarm["AlarmActions"], name


@pytest.mark.slow
def test_the_operators_alarms_are_all_there(template: dict[str, Any]) -> None:
    found = alarms(template)
    custom = {a["MetricName"] for a in found.values() if a.get("Namespace") == CUSTOM}
    assert {"WorkerRecordFailed", "NotificationFailed", "NotificationUnknown", "SchemaDrift"} <= custom
    for alarm in (a for a in found.values() if a.get("Namespace") == CUSTOM):
        stage = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}["Stage"]
        assert stage in ("dev", "prod")
    assert found["CustomerDeadLetterAlarm"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    rate = found["Api5xxRateAlarm"]
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in rate["Metrics"] if "MetricStat" in m} == {
        "5XXError",
        "Count",
    }
    for function in FUNCTIONS:
        for metric in ("Errors", "Throttles"):
            alarm = found[f"{function}{metric}Alarm"]
            assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", metric)
            assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]


@pytest.mark.slow
def test_every_function_is_traced_and_may_write_its_segments(template: dict[str, Any]) -> None:
    found = resources(template)
    policy = found["XRayWritePolicy"]["Properties"]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    for name in FUNCTIONS:
        properties = found[name]["Properties"]
        assert properties["Tracing"] == "Active", name
        assert properties["Role"]["Fn::GetAtt"][0] in {role["Ref"] for role in policy["Roles"]}, name
        assert "XRayWritePolicy" in found[name]["DependsOn"], name
    assert found["RestAPI"]["Properties"]["TracingEnabled"] is True


@pytest.mark.slow
def test_the_dashboard_shows_the_flow_then_the_errors(template: dict[str, Any]) -> None:
    dashboard = resources(template)["OperationsDashboard"]["Properties"]
    body, variables = dashboard["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(body)["widgets"]
    top = sorted((w for w in widgets if w["y"] == 0), key=lambda w: w["x"])
    assert [w["properties"]["title"] for w in top] == [
        "Registrations",
        "Approvals (transitions by action)",
        "Customers created",
        "WhatsApp messages sent",
    ]
    metrics = {m[1] for w in widgets if w["type"] == "metric" for m in w["properties"]["metrics"]}
    assert {"RegistrationCreated", "TransitionApplied.approve", "CustomerCreated", "NotificationSent"} <= metrics
    assert {"WorkerRecordFailed.constraint", "NotificationFailed", "TransitionRefused", "5XXError"} <= metrics
    # Every ${...} in the body is a pseudo parameter or a variable given beside it.
    assert set(re.findall(r"\$\{([^}]+)\}", body)) - {"AWS::Region"} <= set(variables)
