"""What each function gets from the foundation stack (``infra/foundation.yaml``), written into the packaged template.

No account value is kept in the repository: subnets, the security group, the database's
endpoints and secrets, the user pool and the WhatsApp number come from the foundation's
exports (``registration-<stage>-<OutputName>``) through ``Fn::ImportValue``, and each
function's IAM policy is generated here from one description per function (``FUNCTIONS``)
instead of a file per stage.  ``check_config`` refuses a stage whose ``.chalice/config.json``
still carries a placeholder or sets by hand what the foundation provides; ``check_template``
refuses a packaged template that does.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

STAGES = ("dev", "prod")
APP = "registration-backend"
# The RDS CA bundle the package ships (chalicelib/platform): migrate and the drift watch verify the
# instance's certificate with it; RDS Proxy's certificate is public (Amazon Trust Services).
RDS_CA_BUNDLE = "/var/task/chalicelib/platform/rds-ca-bundle.pem"
VPC_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]
LOG_ACTIONS = ["logs:CreateLogStream", "logs:PutLogEvents"]
# The export holding each secret's ARN: the three database logins, and the app's two secrets.
SECRET_EXPORTS = {
    "runtime": "DbRuntimeSecretArn",
    "migrator": "DbMigratorSecretArn",
    "watch": "DbWatchSecretArn",
    "OTP_SECRET_ARN": "OtpSecretArn",
    "WHATSAPP_SECRET_ARN": "WhatsAppSecretArn",
}


@dataclass(frozen=True)
class Function:
    """One function's needs: its database login, how it reaches the database, the app secrets it reads."""

    logical_id: str
    db_login: str  # "runtime", "migrator" (owns the schema) or "watch" (reads the catalog)
    via_proxy: bool  # False: a real session on the instance (advisory lock, startup options)
    app_secrets: tuple[str, ...]
    reserved_concurrency: int
    reads_own_stack: bool = False  # the schema gate's DescribeStacks


# Reserved concurrency: a ceiling on what each function may hold of the database and the
# account (sum 112, leaving the rest of the account's 1,000 unreserved).  The API: 100, API
# Gateway's burst (scripts/edge_protection.py), all through the proxy.  The worker: 5, the
# queue mapping's MaximumConcurrency.  migrate: 2, the gate and an operator's verify at once
# (the advisory lock serialises them).  The scheduled jobs: 1, a run at a time.
FUNCTIONS = {
    "api_handler": Function("APIHandler", "runtime", True, ("OTP_SECRET_ARN", "WHATSAPP_SECRET_ARN"), 100),
    "customer_worker": Function("CustomerWorker", "runtime", True, ("WHATSAPP_SECRET_ARN",), 5),
    "send_notifications": Function("SendNotifications", "runtime", True, ("WHATSAPP_SECRET_ARN",), 1),
    "migrate": Function("Migrate", "migrator", False, (), 2, reads_own_stack=True),
    "purge_idempotency_keys": Function("PurgeIdempotencyKeys", "runtime", True, (), 1),
    "expire_registrations": Function("ExpireRegistrations", "runtime", True, (), 1),
    "schema_drift_watch": Function("SchemaDriftWatch", "watch", False, (), 1),
    "purge_personal_data": Function("PurgePersonalData", "runtime", True, (), 1),
}
# Settings the foundation provides: .chalice/config.json must not set them by hand.
FROM_FOUNDATION = {
    "subnet_ids": "PrivateSubnetIds",
    "security_group_ids": "LambdaSecurityGroupId",
    "DB_SECRET_ARN": "DbRuntimeSecretArn / DbMigratorSecretArn / DbWatchSecretArn",
    "DB_HOST": "DbProxyEndpoint / DbInstanceEndpoint",
    "DB_NAME": "DbName",
    "AUTH_JWKS_URL": "UserPoolId",
    "AUTH_ISSUER": "UserPoolId",
    "AUTH_CLIENT_IDS": "UserPoolClientId",
    "OTP_SECRET_ARN": "OtpSecretArn",
    "WHATSAPP_SECRET_ARN": "WhatsAppSecretArn",
    "WHATSAPP_PHONE_NUMBER_ID": "WhatsAppPhoneNumberId",
}
# Settings each AWS stage must set itself (the rest have defaults).
REQUIRED = ("STAGE", "WHATSAPP_API_URL", "DB_PREPARED_STATEMENTS")
# What an example value looks like: an account id, a resource id, a pool id, a word that says so.
PLACEHOLDER = re.compile(
    r"\b\d{12}\b|\bsubnet-[0-9a-f]+|\bsg-[0-9a-f]+|[a-z]{2}-[a-z]+-\d_\w+|example|placeholder|change-?me|set-me"
    r"|\btodo\b|xxx|<[^>]*>|^1000000000000\d\d$",
    re.IGNORECASE,
)


def function_name(stage: str, logical_id: str) -> str:
    """The Lambda function's name; the foundation's log group is ``/aws/lambda/`` + this."""
    return f"{APP}-{stage}-{logical_id}"


def export(stage: str, name: str) -> dict[str, str]:
    return {"Fn::ImportValue": f"registration-{stage}-{name}"}


def environment(stage: str, function: Function) -> dict[str, Any]:
    """The function's variables that come from the foundation (and the TLS settings that go with them)."""
    pool = {"Pool": export(stage, "UserPoolId")}
    issuer = "https://cognito-idp.${AWS::Region}.amazonaws.com/${Pool}"
    variables: dict[str, Any] = {
        "DB_SECRET_ARN": export(stage, SECRET_EXPORTS[function.db_login]),
        "DB_HOST": export(stage, "DbProxyEndpoint" if function.via_proxy else "DbInstanceEndpoint"),
        "DB_NAME": export(stage, "DbName"),
        "DB_SSLMODE": "verify-full",
        "DB_SSLROOTCERT": "system" if function.via_proxy else RDS_CA_BUNDLE,
        "AUTH_ISSUER": {"Fn::Sub": [issuer, pool]},
        "AUTH_JWKS_URL": {"Fn::Sub": [issuer + "/.well-known/jwks.json", pool]},
        "AUTH_CLIENT_IDS": export(stage, "UserPoolClientId"),
        "WHATSAPP_PHONE_NUMBER_ID": export(stage, "WhatsAppPhoneNumberId"),
    }
    for secret in function.app_secrets:
        variables[secret] = export(stage, SECRET_EXPORTS[secret])
    return variables


def policy(stage: str, function: Function) -> dict[str, Any]:
    """The function's whole IAM policy: its own log group, the VPC's network interfaces, its secrets.

    The log group exists (the foundation made it, with its retention): no ``logs:CreateLogGroup``,
    so a function cannot make a group that keeps logs forever.
    """
    group = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/" + function_name(
        stage, function.logical_id
    )
    secrets = [export(stage, SECRET_EXPORTS[function.db_login])]
    secrets += [export(stage, SECRET_EXPORTS[s]) for s in function.app_secrets]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": LOG_ACTIONS,
            "Resource": [{"Fn::Sub": group}, {"Fn::Sub": group + ":*"}],
        },
        # What AWSLambdaVPCAccessExecutionRole gives: ENIs are created before their ids exist.
        {"Sid": "VpcNetworkInterfaces", "Effect": "Allow", "Action": VPC_ACTIONS, "Resource": "*"},
        {"Sid": "ReadSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secrets},
    ]
    if function.reads_own_stack:
        stack = "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/" + f"{APP}-{stage}/*"
        statements.append(
            {
                "Sid": "ReadOwnStackStatus",
                "Effect": "Allow",
                "Action": "cloudformation:DescribeStacks",
                "Resource": {"Fn::Sub": stack},
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


# checkov findings on the packaged template that stay, each with its reason (RELIABILITY.md).
FUNCTION_SKIPS = {
    "CKV_AWS_173": "the variables hold ARNs, host names and limits, no secret (those are read from Secrets Manager)",
}
NO_DLQ = {  # CKV_AWS_116: why no function-level dead-letter queue
    "APIHandler": "invoked synchronously by API Gateway: the caller gets the error, nothing is retried",
    "CustomerWorker": "an SQS mapping: failed records go to create-customer-dlq by the queue's redrive policy",
    "SendNotifications": "a schedule: the outbox keeps what was not sent and the next minute's run retries it",
    "Migrate": "the schema gate: no retry by design (MaximumRetryAttempts 0); a failure rolls the stack back",
    "PurgeIdempotencyKeys": "a schedule: the next run does what this one did not",
    "ExpireRegistrations": "a schedule: the next run does what this one did not",
    "SchemaDriftWatch": "a schedule: the next hour's run checks again; a failure raises the Errors alarm",
    "PurgePersonalData": "a schedule: the next day's run erases what this one did not",
}
SSE_SQS = "SSE-SQS (SqsManagedSseEnabled) encrypts at rest; a CMK adds kms calls to the API and the worker"
STACK_SKIPS = {
    "RestAPI": {"CKV_AWS_120": "answers carry one caller's personal data: a cache could serve them to another"},
    "CustomerQueue": {"CKV_AWS_27": SSE_SQS},
    "CustomerDeadLetterQueue": {"CKV_AWS_27": SSE_SQS},
}


def apply(template: dict[str, Any], stage: str) -> None:
    """Each function's name, network, variables, policy and reserved concurrency, in place."""
    resources: dict[str, Any] = template["Resources"]
    vpc = {
        "SubnetIds": {"Fn::Split": [",", export(stage, "PrivateSubnetIds")]},
        "SecurityGroupIds": [export(stage, "LambdaSecurityGroupId")],
    }
    for function in FUNCTIONS.values():
        properties = resources[function.logical_id]["Properties"]
        properties["FunctionName"] = function_name(stage, function.logical_id)
        properties["VpcConfig"] = vpc
        properties["ReservedConcurrentExecutions"] = function.reserved_concurrency
        properties.setdefault("Environment", {}).setdefault("Variables", {}).update(environment(stage, function))
        role = resources[properties["Role"]["Fn::GetAtt"][0]]
        [entry] = role["Properties"]["Policies"]
        entry["PolicyDocument"] = policy(stage, function)
        _skip(resources[function.logical_id], FUNCTION_SKIPS | {"CKV_AWS_116": NO_DLQ[function.logical_id]})
        eni = "the VPC network-interface calls Lambda makes take no resource ARN"
        _skip(role, {"CKV_AWS_111": eni})


def apply_stack(template: dict[str, Any], stage: str) -> None:
    """The stack-wide parts: the alarm topic and the API's access log encrypted with the stage's key, in place.

    The access log group also names the foundation's ``ApiGatewayAccountReady``: API Gateway
    writes access logs only once its account settings name a CloudWatch role, and the import
    keeps the foundation from dropping that role while this stack logs.
    """
    resources: dict[str, Any] = template["Resources"]
    for name, skips in STACK_SKIPS.items():
        _skip(resources[name], skips)
    resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"] = export(stage, "LogKeyArn")
    group = resources["ApiAccessLogGroup"]["Properties"]
    group["KmsKeyId"] = export(stage, "LogKeyArn")
    group["Tags"] = [{"Key": "api-gateway-account", "Value": export(stage, "ApiGatewayAccountReady")}]


def check_config(config: dict[str, Any], stage: str) -> list[str]:
    """What is wrong with ``stage`` in ``.chalice/config.json``: each a sentence naming the key."""
    if stage not in config.get("stages", {}):
        return [f"stage {stage} is missing from .chalice/config.json"]
    settings = config["stages"][stage]
    problems = []
    scopes: list[tuple[str, dict[str, Any]]] = [(f"stages.{stage}", settings)]
    scopes += [(f"stages.{stage}.lambda_functions.{n}", f) for n, f in settings.get("lambda_functions", {}).items()]
    for where, scope in scopes:
        for key, value in _settings(scope):
            if key in FROM_FOUNDATION:
                problems.append(
                    f"{where}: {key} is set by hand; it comes from the foundation's export "
                    f"registration-{stage}-{FROM_FOUNDATION[key]}: remove it"
                )
            elif isinstance(value, str) and PLACEHOLDER.search(value):
                problems.append(f"{where}: {key} is still a placeholder ({value!r})")
    variables = settings.get("environment_variables", {})
    for key in REQUIRED:
        if not str(variables.get(key, "")).strip():
            problems.append(f"stages.{stage}.environment_variables: {key} is missing")
    if variables.get("STAGE", stage) != stage:
        problems.append(f"stages.{stage}.environment_variables: STAGE is {variables['STAGE']!r}, not {stage!r}")
    if not str(variables.get("WHATSAPP_API_URL", "https://")).startswith("https://"):
        problems.append(f"stages.{stage}.environment_variables: WHATSAPP_API_URL must be https")
    missing = sorted(set(FUNCTIONS) - set(settings.get("lambda_functions", {})))
    problems += [f"stages.{stage}.lambda_functions: {name} is missing" for name in missing]
    return problems


def check_template(template: dict[str, Any]) -> list[str]:
    """Placeholders or empty values left in the packaged functions' variables and policies."""
    problems = []
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            for key, value in resource["Properties"].get("Environment", {}).get("Variables", {}).items():
                if value in ("", None):
                    problems.append(f"{name}: {key} is empty")
                elif isinstance(value, str) and PLACEHOLDER.search(value):
                    problems.append(f"{name}: {key} is still a placeholder ({value!r})")
        if resource["Type"] == "AWS::IAM::Role":
            for text in _strings(resource["Properties"].get("Policies", [])):
                if PLACEHOLDER.search(text):
                    problems.append(f"{name}: its policy names {text!r}, a placeholder")
    return problems


def _skip(resource: dict[str, Any], reasons: dict[str, str]) -> None:
    """checkov's in-template skips (``Metadata.checkov.skip``), one line of reason each."""
    skips = resource.setdefault("Metadata", {}).setdefault("checkov", {}).setdefault("skip", [])
    skips += [{"id": check, "comment": comment} for check, comment in sorted(reasons.items())]


def _settings(scope: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for key in ("subnet_ids", "security_group_ids"):
        if key in scope:
            yield key, scope[key]
    yield from scope.get("environment_variables", {}).items()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)
