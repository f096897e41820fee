"""What an operator needs on day one, added to the packaged template: alarms, a dashboard, tracing.

``add(template, stage)`` (called by ``scripts/package.py`` after ``chalice package``):

- alarms, every one notifying ``AlarmTopic`` (the SNS topic; a bare one is added when
  the merge template has none): the API's 5xx rate, ``WorkerRecordFailed``, the DLQ's
  depth (the existing ``CustomerDeadLetterAlarm`` gets the topic as its target),
  ``NotificationFailed``, ``NotificationUnknown``, ``SchemaDrift`` > 0 (unless the
  template already alarms on it), and each function's Lambda ``Errors`` and ``Throttles``;
- the CloudWatch dashboard ``registration-backend-<stage>``: the flow registrations ->
  approvals -> customers -> messages across the top, the error panels beneath;
- X-Ray: the API stage traced too (``.chalice/config.json`` turns on active tracing
  for every function), and each function's role allowed to write its segments.

The custom metrics are the EMF lines the code writes (``chalicelib.platform.emf``): namespace
``RegistrationBackend``, dimension ``Stage``, a breakdown as ``Metric.value``.
"""

import json
from typing import Any

from chalicelib.customers.service import Failure
from chalicelib.workflow import Action

NAMESPACE = "RegistrationBackend"
API_NAME = "registration-backend"  # the REST API's name: chalice's app_name, the OpenAPI title
API_STAGE = "api"
TOPIC = "AlarmTopic"
DASHBOARD = "OperationsDashboard"
# Breakdowns on the dashboard, from what the code passes as ``by=``: the staff and
# registrant actions (create-customer is the worker's CustomerCreated), the worker's
# failure reasons; the WhatsApp templates are passed to ``add``.
APPROVAL_ACTIONS = tuple(a.value for a in Action if a is not Action.CREATE_CUSTOMER)
WORKER_FAILURE_REASONS = tuple(reason.value for reason in Failure)

Json = dict[str, Any]
_TROUBLE = ("NotificationFailed", "NotificationUnknown", "NotificationRetried")


def add(template: Json, stage: str, templates: tuple[str, ...] = ()) -> Json:
    """``template`` with the alarms, the dashboard and the tracing permissions added (changed in place, returned).

    ``templates`` names the WhatsApp templates, for the dashboard's per-template panels.
    """
    resources: Json = template["Resources"]
    resources.setdefault(TOPIC, {"Type": "AWS::SNS::Topic", "Properties": {"KmsMasterKeyId": "alias/aws/sns"}})
    resources.update(alarms(template, stage))
    resources[DASHBOARD] = dashboard(template, stage, templates)
    _trace(resources)
    return template


def alarms(template: Json, stage: str) -> Json:
    """The alarm resources by logical id (the DLQ's existing alarm only gains its target)."""
    resources: Json = template["Resources"]
    found: Json = {
        "Api5xxRateAlarm": _api_5xx_rate(),
        "WorkerRecordFailedAlarm": _custom(
            "WorkerRecordFailed",
            stage,
            "create-customer records failed (bad body, unknown registration, "
            "database, constraint): see docs/operations.md, WorkerRecordFailed",
        ),
        "NotificationFailedAlarm": _custom(
            "NotificationFailed",
            stage,
            "WhatsApp refused messages for good: see docs/operations.md, NotificationFailed",
        ),
        "NotificationUnknownAlarm": _custom(
            "NotificationUnknown",
            stage,
            "WhatsApp messages in doubt (sent or not): see docs/operations.md, NotificationUnknown",
        ),
    }
    if not any(_metric_name(r) == "SchemaDrift" for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"):
        found["SchemaDriftAlarm"] = _custom(
            "SchemaDrift",
            stage,
            "the live schema drifted from the code's: see docs/operations.md, SchemaDrift",
            statistic="Maximum",
            period=3600,
        )
    dead_letter = resources.get("CustomerDeadLetterAlarm")
    if dead_letter is not None:
        dead_letter["Properties"].setdefault("AlarmActions", [{"Ref": TOPIC}])
    for name in _functions(resources):
        for metric in ("Errors", "Throttles"):
            found[f"{name}{metric}Alarm"] = _alarm(
                f"{name}: Lambda {metric.lower()}: see docs/operations.md, Lambda errors and throttles",
                {
                    "Namespace": "AWS/Lambda",
                    "MetricName": metric,
                    "Dimensions": [_dimension("FunctionName", {"Ref": name})],
                },
                statistic="Sum",
            )
    return found


def dashboard(template: Json, stage: str, templates: tuple[str, ...] = ()) -> Json:
    """The ``AWS::CloudWatch::Dashboard``: the flow on top, the errors beneath, then latency, drift, Lambda."""
    functions = _functions(template["Resources"])
    flow = [
        _panel("Registrations", [_custom_metric("RegistrationCreated")]),
        _panel(
            "Approvals (transitions by action)",
            [
                _custom_metric("TransitionApplied"),
                *(_custom_metric(f"TransitionApplied.{a}") for a in APPROVAL_ACTIONS),
            ],
        ),
        _panel("Customers created", [_custom_metric("CustomerCreated")]),
        _panel(
            "WhatsApp messages sent",
            [_custom_metric("NotificationSent"), *(_custom_metric(f"NotificationSent.{t}") for t in templates)],
        ),
    ]
    errors = [
        _panel("API 5xx and 4xx", [_api_metric("5XXError"), _api_metric("4XXError"), _api_metric("Count")]),
        _panel("Refused transitions (409)", [_custom_metric("TransitionRefused")]),
        _panel(
            "Worker failures by reason",
            [
                _custom_metric("WorkerRecordFailed"),
                *(_custom_metric(f"WorkerRecordFailed.{r}") for r in WORKER_FAILURE_REASONS),
            ],
        ),
        _panel(
            "WhatsApp failed / unknown / retried",
            [_custom_metric(m) for m in _TROUBLE] + [_custom_metric(f"{m}.{t}") for m in _TROUBLE for t in templates],
        ),
    ]
    health = [
        _panel(
            "Dead-letter queue depth",
            [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${DeadLetterQueueName}"]],
            stat="Maximum",
        ),
        _panel(
            "WhatsApp latency (ms)",
            [_custom_metric("WhatsAppLatency", stat="p50"), _custom_metric("WhatsAppLatency", stat="p99")],
            stat="p99",
        ),
        _panel("Schema drift", [_custom_metric("SchemaDrift", stat="Maximum")], stat="Maximum"),
        # Issue 16's budgets: the day's share of one-time codes spent (its alarm fires at 50 %), and refusals.
        _panel(
            "One-time codes: daily budget used (%), refused",
            [_custom_metric("OtpBudgetUsedPercent", stat="Maximum"), _custom_metric("OtpSendRefused")],
            stat="Maximum",
        ),
        _panel(
            "Lambda errors and throttles",
            [
                ["AWS/Lambda", m, "FunctionName", f"${{{f}}}", {"label": f"{f} {m}"}]
                for f in functions
                for m in ("Errors", "Throttles")
            ],
        ),
    ]
    widgets = []
    for row, panels in enumerate((flow, errors, health)):
        for column, panel in enumerate(panels):
            widgets.append({**panel, "x": column * 6, "y": row * 6, "width": 6, "height": 6})
    widgets.append(_error_log_widget(functions, y=18))
    body = json.dumps({"widgets": widgets}, separators=(",", ":")).replace("__STAGE__", stage)
    variables: Json = {f: {"Ref": f} for f in functions}
    variables["DeadLetterQueueName"] = {"Fn::GetAtt": ["CustomerDeadLetterQueue", "QueueName"]}
    return {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {"DashboardName": f"{API_NAME}-{stage}", "DashboardBody": {"Fn::Sub": [body, variables]}},
    }


def _trace(resources: Json) -> None:
    """The API stage traced; every function's role may write X-Ray segments, before the function is created."""
    if "RestAPI" in resources:
        resources["RestAPI"]["Properties"]["TracingEnabled"] = True
    functions = _functions(resources)
    roles = sorted({resources[f]["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions})
    resources["XRayWritePolicy"] = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": "WriteXRaySegments",
            "Roles": [{"Ref": role} for role in roles],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    # X-Ray has no resource-level permissions for these two actions.
                    {
                        "Effect": "Allow",
                        "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                        "Resource": "*",
                    }
                ],
            },
        },
    }
    # Lambda refuses active tracing to a role that may not write segments: the policy first.
    for name in functions:
        depends = resources[name].get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else depends
        resources[name]["DependsOn"] = [*depends, "XRayWritePolicy"]


def _functions(resources: Json) -> list[str]:
    return sorted(name for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function")


def _custom(name: str, stage: str, description: str, *, statistic: str = "Sum", period: int = 300) -> Json:
    metric = {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": [_dimension("Stage", stage)]}
    return _alarm(description, metric, statistic=statistic, period=period)


def _alarm(description: str, metric: Json, *, statistic: str, period: int = 300) -> Json:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            **metric,
            "Statistic": statistic,
            "Period": period,
            "EvaluationPeriods": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": TOPIC}],
            "OKActions": [{"Ref": TOPIC}],
        },
    }


def _api_5xx_rate() -> Json:
    """More than 5 % of at least 10 requests in 5 minutes answered 5xx."""
    dimensions = [_dimension("ApiName", API_NAME), _dimension("Stage", API_STAGE)]

    def query(id_: str, metric: str) -> Json:
        stat = {"Metric": {"Namespace": "AWS/ApiGateway", "MetricName": metric, "Dimensions": dimensions}}
        return {"Id": id_, "ReturnData": False, "MetricStat": {**stat, "Period": 300, "Stat": "Sum"}}

    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": "over 5% of API requests answered 5xx: see docs/operations.md, Api5xxRate",
            "Metrics": [
                query("errors", "5XXError"),
                query("requests", "Count"),
                {
                    "Id": "rate",
                    "Label": "5xx rate",
                    "Expression": "IF(requests >= 10, errors / requests, 0)",
                    "ReturnData": True,
                },
            ],
            "EvaluationPeriods": 1,
            "Threshold": 0.05,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": TOPIC}],
            "OKActions": [{"Ref": TOPIC}],
        },
    }


def _dimension(name: str, value: Any) -> Json:
    return {"Name": name, "Value": value}


def _metric_name(alarm: Json) -> str | None:
    name = alarm["Properties"].get("MetricName")
    return name if isinstance(name, str) else None


def _custom_metric(name: str, *, stat: str | None = None) -> list[Any]:
    options = {"label": f"{name} {stat}" if stat else name, **({"stat": stat} if stat else {})}
    return [NAMESPACE, name, "Stage", "__STAGE__", options]


def _api_metric(name: str) -> list[Any]:
    return ["AWS/ApiGateway", name, "ApiName", API_NAME, "Stage", API_STAGE, {"label": name}]


def _panel(title: str, metrics: list[list[Any]], *, stat: str = "Sum") -> Json:
    return {
        "type": "metric",
        "properties": {
            "title": title,
            "region": "${AWS::Region}",
            "metrics": metrics,
            "stat": stat,
            "period": 300,
            "view": "timeSeries",
        },
    }


def _error_log_widget(functions: list[str], *, y: int) -> Json:
    sources = " | ".join(f"SOURCE '/aws/lambda/${{{f}}}'" for f in functions)
    query = (
        f"{sources} | fields @timestamp, level, logger, correlation_id, message "
        "| filter level = 'ERROR' or level = 'WARNING' | sort @timestamp desc | limit 100"
    )
    return {
        "type": "log",
        "x": 0,
        "y": y,
        "width": 24,
        "height": 6,
        "properties": {
            "title": "Errors and warnings (all functions)",
            "region": "${AWS::Region}",
            "query": query,
            "view": "table",
        },
    }
