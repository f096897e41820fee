"""Abuse limits at the edge, added to the packaged template by ``scripts/package.py`` (issue 16).

- ``ApiWebAcl``: an ``AWS::WAFv2::WebACL`` on the API stage: per-IP rate limits (tighter
  on the two routes that send a paid WhatsApp code: ``POST /registrations`` and
  ``resend-code``), then AWS's managed rule groups for common exploits and known bad
  inputs.  A rate-limited request gets 429 with ``Retry-After`` and the API's own error
  body, before it reaches API Gateway's throttle or a function.
- Per-method throttling on the stage: the staff routes get buckets of their own, so
  that an anonymous flood (even one answered 401) cannot use up the staff's.
- ``OtpBudgetAlarm``: the share of the global daily OTP budget already spent (the
  ``OtpBudgetUsedPercent`` metric the API logs in EMF) passing ``OTP_BUDGET_ALARM_PERCENT``,
  long before the budget's 429s begin; it notifies ``AlarmTopic`` (made here only when
  the template has none).

docs/security.md explains each figure.
"""

import copy
import json
from typing import Any

WEB_ACL = "ApiWebAcl"
ALARM_TOPIC = "AlarmTopic"
OTP_ROUTES_PER_IP_PER_5_MIN = 10
ALL_ROUTES_PER_IP_PER_5_MIN = 1000
OTP_BUDGET_ALARM_PERCENT = 50
# (rate per second, burst) per method; the stage's default (/*/*) stays the public bucket.
STAFF_THROTTLE = (100, 200)
OTP_THROTTLE = (10, 20)
STAFF_METHODS = (
    ("/registrations", "GET"),
    ("/registrations/{registration_id}", "GET"),
    ("/registrations/{registration_id}/{action}", "POST"),
    ("/packages", "POST"),
)
OTP_METHODS = (("/registrations", "POST"), ("/registrations/{registration_id}/resend-code", "POST"))
_TOO_MANY = "too_many_requests"
_TOO_MANY_BODY = {
    "error": {
        "code": "too_many_requests",
        "message": "too many requests from this address; try again later",
        "details": {},
    }
}


def protect(template: dict[str, Any], stage: str) -> dict[str, Any]:
    """``template`` with the web ACL, its association, per-method throttles and the OTP budget alarm."""
    template = copy.deepcopy(template)
    resources: dict[str, Any] = template["Resources"]
    resources[WEB_ACL] = _web_acl()
    resources["ApiWebAclAssociation"] = {
        "Type": "AWS::WAFv2::WebACLAssociation",
        "Properties": {
            "ResourceArn": {
                "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::"
                "/restapis/${RestAPI}/stages/${RestAPI.Stage}"
            },
            "WebACLArn": {"Fn::GetAtt": [WEB_ACL, "Arn"]},
        },
    }
    settings = resources["RestAPI"]["Properties"].setdefault("MethodSettings", [])
    settings.extend(_method_setting(path, method, *STAFF_THROTTLE) for path, method in STAFF_METHODS)
    settings.extend(_method_setting(path, method, *OTP_THROTTLE) for path, method in OTP_METHODS)
    if ALARM_TOPIC not in resources:
        resources[ALARM_TOPIC] = {"Type": "AWS::SNS::Topic", "Properties": {"KmsMasterKeyId": "alias/aws/sns"}}
    resources["OtpBudgetAlarm"] = _otp_budget_alarm(stage)
    return template


def _web_acl() -> dict[str, Any]:
    otp_routes = {
        "AndStatement": {
            "Statements": [
                _byte_match({"Method": {}}, "EXACTLY", "POST"),
                {
                    "OrStatement": {
                        "Statements": [
                            _byte_match({"UriPath": {}}, "ENDS_WITH", "/registrations"),
                            _byte_match({"UriPath": {}}, "ENDS_WITH", "/resend-code"),
                        ]
                    }
                },
            ]
        }
    }
    rules = [
        _rate_rule("otp-routes-per-ip", 0, OTP_ROUTES_PER_IP_PER_5_MIN, otp_routes),
        _rate_rule("all-routes-per-ip", 1, ALL_ROUTES_PER_IP_PER_5_MIN, None),
        _managed("AWSManagedRulesCommonRuleSet", 2),
        _managed("AWSManagedRulesKnownBadInputsRuleSet", 3),
    ]
    return {
        "Type": "AWS::WAFv2::WebACL",
        "Properties": {
            "Scope": "REGIONAL",
            "Description": (
                "Registration API - per-IP rate limits, tighter where a WhatsApp code is sent, and AWS managed rules"
            ),
            "DefaultAction": {"Allow": {}},
            "CustomResponseBodies": {
                _TOO_MANY: {"ContentType": "APPLICATION_JSON", "Content": json.dumps(_TOO_MANY_BODY)}
            },
            "Rules": rules,
            "VisibilityConfig": _visibility("registration-api"),
        },
    }


def _rate_rule(name: str, priority: int, limit: int, scope_down: dict[str, Any] | None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Limit": limit, "EvaluationWindowSec": 300, "AggregateKeyType": "IP"}
    if scope_down is not None:
        statement["ScopeDownStatement"] = scope_down
    return {
        "Name": name,
        "Priority": priority,
        "Statement": {"RateBasedStatement": statement},
        "Action": {
            "Block": {
                "CustomResponse": {
                    "ResponseCode": 429,
                    "CustomResponseBodyKey": _TOO_MANY,
                    "ResponseHeaders": [{"Name": "Retry-After", "Value": "300"}],
                }
            }
        },
        "VisibilityConfig": _visibility(name),
    }


def _managed(name: str, priority: int) -> dict[str, Any]:
    return {
        "Name": name,
        "Priority": priority,
        "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": name}},
        "OverrideAction": {"None": {}},
        "VisibilityConfig": _visibility(name),
    }


def _byte_match(field: dict[str, Any], constraint: str, value: str) -> dict[str, Any]:
    return {
        "ByteMatchStatement": {
            "FieldToMatch": field,
            "PositionalConstraint": constraint,
            "SearchString": value,
            "TextTransformations": [{"Priority": 0, "Type": "NONE"}],
        }
    }


def _visibility(name: str) -> dict[str, Any]:
    return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": name}


def _method_setting(path: str, method: str, rate: int, burst: int) -> dict[str, Any]:
    # CloudFormation spells a method's resource path with each of its "/" as "~1", after a "/".
    return {
        "ResourcePath": "/" + path.replace("/", "~1"),
        "HttpMethod": method,
        "ThrottlingRateLimit": rate,
        "ThrottlingBurstLimit": burst,
    }


def _otp_budget_alarm(stage: str) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": (
                f"over {OTP_BUDGET_ALARM_PERCENT}% of today's WhatsApp OTP budget is spent: "
                "pumping, or a real rush? See docs/security.md"
            ),
            "Namespace": "RegistrationBackend",
            "MetricName": "OtpBudgetUsedPercent",
            # chalicelib.platform.emf puts every metric under the stage's dimension.
            "Dimensions": [{"Name": "Stage", "Value": stage}],
            "Statistic": "Maximum",
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": OTP_BUDGET_ALARM_PERCENT,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": ALARM_TOPIC}],
        },
    }
