""".chalice/config.json and the generated policies: each function may read exactly its stage's secrets.

No account value lives in the repository: ``scripts/foundation_refs.py`` writes each function's
network, database, secrets and policy into the packaged template from the foundation's exports.
These tests run that generation on a template shaped as ``chalice package`` writes it (fast);
tests/integration/test_package.py checks the real packaged template.
"""

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode  # type: ignore[import-untyped]  # cfn-lint ships no type hints

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import foundation_refs

CHALICE = ROOT / ".chalice"
CONFIG = json.loads((CHALICE / "config.json").read_text())
DEPLOYED = ["dev", "prod"]
LOGICAL_ID = {
    "api_handler": "APIHandler",
    "customer_worker": "CustomerWorker",
    "send_notifications": "SendNotifications",
    "migrate": "Migrate",
    "purge_idempotency_keys": "PurgeIdempotencyKeys",
    "expire_registrations": "ExpireRegistrations",
    "schema_drift_watch": "SchemaDriftWatch",
    "purge_personal_data": "PurgePersonalData",
}
# Which of the app's secrets each function reads: only what it uses (the OTP key hashes codes in
# the API; the WhatsApp token sends messages from the API, the worker and the sender).
APP_SECRETS = {
    "api_handler": ["OTP_SECRET_ARN", "WHATSAPP_SECRET_ARN"],
    "customer_worker": ["WHATSAPP_SECRET_ARN"],
    "send_notifications": ["WHATSAPP_SECRET_ARN"],
}
# The database login each function connects as: migrate owns the schema, the drift watch only
# reads what verify reads (issue 24: before, it had the owner's secret), the rest read and write rows.
DB_LOGIN = {"migrate": "DbMigratorSecretArn", "schema_drift_watch": "DbWatchSecretArn"}
# Each function's actions in the hand-written policy files this generation replaced
# (.chalice/policy-<stage>-<function>.json, removed in the same change).
VPC = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}
BEFORE = {
    function: {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "secretsmanager:GetSecretValue"}
    | VPC
    | ({"cloudformation:DescribeStacks"} if function == "migrate" else set())
    for function in LOGICAL_ID
}
# The one change: the foundation makes each log group with its retention, so no function may
# create one (a group a function made would keep its logs forever).
DROPPED = {"logs:CreateLogGroup"}


def chalice_template(stage: str) -> dict[str, Any]:
    """What ``chalice package`` writes for the functions: each with its role, the policy file's (empty) statements."""
    resources: dict[str, Any] = {}
    for logical_id in LOGICAL_ID.values():
        role = "ApiHandlerRole" if logical_id == "APIHandler" else f"{logical_id}Role"
        stub = json.loads((CHALICE / "policy-generated-at-package.json").read_text())
        resources[role] = {
            "Type": "AWS::IAM::Role",
            "Properties": {"Policies": [{"PolicyName": f"{role}Policy", "PolicyDocument": stub}]},
        }
        resources[logical_id] = {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Role": {"Fn::GetAtt": [role, "Arn"]},
                "Environment": {"Variables": dict(CONFIG["stages"][stage]["environment_variables"])},
            },
        }
    for name in ("AlarmTopic", "ApiAccessLogGroup", "RestAPI", "CustomerQueue", "CustomerDeadLetterQueue"):
        resources[name] = {"Type": "AWS::Test", "Properties": {}}
    template = {"Resources": resources}
    foundation_refs.apply(template, stage)
    foundation_refs.apply_stack(template, stage)
    return template


@pytest.fixture(scope="module", params=DEPLOYED)
def generated(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, chalice_template(request.param)


def statements(template: dict[str, Any], function: str) -> dict[str, Any]:
    logical_id = LOGICAL_ID[function]
    role = template["Resources"][logical_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    [policy] = template["Resources"][role]["Properties"]["Policies"]
    return {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}


def variables(template: dict[str, Any], function: str) -> dict[str, Any]:
    found: dict[str, Any] = template["Resources"][LOGICAL_ID[function]]["Properties"]["Environment"]["Variables"]
    return found


def imported(stage: str, name: str) -> dict[str, str]:
    return {"Fn::ImportValue": f"registration-{stage}-{name}"}


def test_policies_are_generated_not_kept_per_stage() -> None:
    assert CONFIG["autogen_policy"] is False
    assert not list(CHALICE.glob("policy-dev-*"))
    assert not list(CHALICE.glob("policy-prod-*"))
    # chalice's file for every function is an empty policy: packaging replaces it, or IAM refuses it.
    assert json.loads((CHALICE / "policy-generated-at-package.json").read_text())["Statement"] == []
    for stage in DEPLOYED:
        for settings in CONFIG["stages"][stage]["lambda_functions"].values():
            assert settings["iam_policy_file"] == "policy-generated-at-package.json"
    assert set(foundation_refs.FUNCTIONS) == set(LOGICAL_ID)


@pytest.mark.parametrize("function", LOGICAL_ID)
def test_each_function_keeps_exactly_the_actions_it_had(generated: tuple[str, dict[str, Any]], function: str) -> None:
    _, template = generated
    actions: set[str] = set()
    for statement in statements(template, function).values():
        actions |= {statement["Action"]} if isinstance(statement["Action"], str) else set(statement["Action"])
    assert actions == BEFORE[function] - DROPPED


@pytest.mark.parametrize("function", LOGICAL_ID)
def test_each_function_reads_its_own_secrets_and_no_other(generated: tuple[str, dict[str, Any]], function: str) -> None:
    stage, template = generated
    own = variables(template, function)
    assert sorted(k for k in own if k.endswith("_SECRET_ARN") and k != "DB_SECRET_ARN") == APP_SECRETS.get(function, [])
    login = DB_LOGIN.get(function, "DbRuntimeSecretArn")
    assert own["DB_SECRET_ARN"] == imported(stage, login)
    expected = [own["DB_SECRET_ARN"]] + [own[k] for k in APP_SECRETS.get(function, [])]
    granted = statements(template, function)["ReadSecrets"]
    assert granted["Action"] == "secretsmanager:GetSecretValue"
    # The exported ARN is the secret's whole ARN (with Secrets Manager's six random characters).
    assert granted["Resource"] == expected


@pytest.mark.parametrize("function", LOGICAL_ID)
def test_each_function_writes_only_its_own_log_group(generated: tuple[str, dict[str, Any]], function: str) -> None:
    stage, template = generated
    name = template["Resources"][LOGICAL_ID[function]]["Properties"]["FunctionName"]
    assert name == f"registration-backend-{stage}-{LOGICAL_ID[function]}"
    group = f":log-group:/aws/lambda/{name}"
    resources = [r["Fn::Sub"] for r in statements(template, function)["Logs"]["Resource"]]
    assert [r.split("${AWS::AccountId}", 1)[1] for r in resources] == [group, group + ":*"]


@pytest.mark.parametrize("function", LOGICAL_ID)
def test_each_function_reaches_the_database_the_way_its_session_needs(
    generated: tuple[str, dict[str, Any]], function: str
) -> None:
    """The gate's advisory lock and startup options need a real session: migrate and the watch go to
    the instance with the shipped RDS CA bundle; the rest through RDS Proxy (a public certificate)."""
    stage, template = generated
    own = variables(template, function)
    direct = function in ("migrate", "schema_drift_watch")
    assert own["DB_HOST"] == imported(stage, "DbInstanceEndpoint" if direct else "DbProxyEndpoint")
    assert own["DB_SSLMODE"] == "verify-full"
    assert own["DB_SSLROOTCERT"] == ("/var/task/chalicelib/platform/rds-ca-bundle.pem" if direct else "system")
    assert own["DB_NAME"] == imported(stage, "DbName")
    assert own["AUTH_CLIENT_IDS"] == imported(stage, "UserPoolClientId")
    assert own["AUTH_ISSUER"]["Fn::Sub"][1] == {"Pool": imported(stage, "UserPoolId")}
    assert own["STAGE"] == stage
    properties = template["Resources"][LOGICAL_ID[function]]["Properties"]
    assert properties["VpcConfig"]["SecurityGroupIds"] == [imported(stage, "LambdaSecurityGroupId")]
    assert properties["ReservedConcurrentExecutions"] >= 1


def test_reserved_concurrency_leaves_the_account_room() -> None:
    """Lambda refuses reservations that leave fewer than 100 of the account's (default) 1,000 unreserved."""
    reserved = {f.logical_id: f.reserved_concurrency for f in foundation_refs.FUNCTIONS.values()}
    assert sum(reserved.values()) <= 900
    # The worker may run as many copies as its queue mapping starts (MaximumConcurrency).
    merge = json.loads((CHALICE / "template-merge.json").read_text())
    events = merge["Resources"]["CustomerWorker"]["Properties"]["Events"]
    assert (
        reserved["CustomerWorker"]
        >= events["CustomerWorkerSqsEventSource"]["Properties"]["ScalingConfig"]["MaximumConcurrency"]
    )


@pytest.mark.parametrize("stage", DEPLOYED)
def test_every_import_is_a_foundation_export(stage: str) -> None:
    """The names the app imports are exactly ones infra/foundation.yaml exports (for this stage)."""
    foundation, errors = decode(str(ROOT / "infra" / "foundation.yaml"))
    assert not errors
    assert foundation is not None
    exported = {o["Export"]["Name"]["Fn::Sub"].replace("${Stage}", stage) for o in foundation["Outputs"].values()}
    used = {value for value in _imports(chalice_template(stage))}
    assert used
    assert used <= exported, sorted(used - exported)
    groups = {
        r["Properties"]["LogGroupName"]["Fn::Sub"].replace("${Stage}", stage)
        for r in foundation["Resources"].values()
        if r["Type"] == "AWS::Logs::LogGroup" and "/aws/lambda/" in str(r["Properties"]["LogGroupName"])
    }
    names = {foundation_refs.function_name(stage, f.logical_id) for f in foundation_refs.FUNCTIONS.values()}
    assert groups == {f"/aws/lambda/{name}" for name in names}


@pytest.mark.parametrize("stage", DEPLOYED)
def test_the_stages_as_committed_are_packageable(stage: str) -> None:
    assert foundation_refs.check_config(CONFIG, stage) == []
    assert foundation_refs.check_template(chalice_template(stage)) == []


@pytest.mark.parametrize(
    ("where", "key", "value", "said"),
    [
        ("stage", "WHATSAPP_API_URL", "https://example.com/v21.0", "WHATSAPP_API_URL is still a placeholder"),
        ("stage", "AUTH_ISSUER", "https://cognito-idp.x/ap-southeast-3_ProdPool1", "AUTH_ISSUER is set by hand"),
        ("stage", "subnet_ids", ["subnet-0d4e5f60718293a4b"], "subnet_ids is set by hand"),
        ("migrate", "DB_SECRET_ARN", "arn:aws:secretsmanager:ap-southeast-3:210987654321:secret:x", "DB_SECRET_ARN"),
        ("stage", "STAGE", "", "STAGE is missing"),
    ],
)
def test_a_placeholder_or_a_hand_copied_value_is_refused_by_name(where: str, key: str, value: Any, said: str) -> None:
    config = copy.deepcopy(CONFIG)
    stage = config["stages"]["prod"]
    scope = stage if where == "stage" else stage["lambda_functions"][where]
    if key.endswith("_ids"):
        scope[key] = value
    else:
        scope.setdefault("environment_variables", {})[key] = value
    problems = foundation_refs.check_config(config, "prod")
    assert any(said in problem for problem in problems), problems


def test_make_package_refuses_a_placeholder_before_building_anything(tmp_path: Path) -> None:
    """The real command on a copy of the project whose prod stage has a placeholder left: exit 1, the key named."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "scripts", project / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(CHALICE, project / ".chalice", ignore=shutil.ignore_patterns("deployments", "deployed"))
    config = copy.deepcopy(CONFIG)
    config["stages"]["prod"]["environment_variables"]["WHATSAPP_PHONE_NUMBER_ID"] = "100000000000002"
    config["stages"]["prod"]["lambda_functions"]["api_handler"]["environment_variables"] = {
        "OTP_SECRET_ARN": "arn:aws:secretsmanager:ap-southeast-3:123456789012:secret:registration-prod-otp"
    }
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    command = [sys.executable, "scripts/package.py", "--stage", "prod", "--out", str(out)]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "stage prod cannot be packaged" in result.stderr
    assert "WHATSAPP_PHONE_NUMBER_ID is set by hand" in result.stderr
    assert "lambda_functions.api_handler: OTP_SECRET_ARN is set by hand" in result.stderr
    assert not out.exists(), "nothing is built"


def test_the_local_stage_sets_nothing_from_aws() -> None:
    """`chalice local` and the test client use it: the environment the stack or test sets wins.

    It only raises the OTP limits, so that `make run`, the fuzzer and the tests, all
    from one address, are not taken for a pumping attack (at least 1,000 an hour).
    """
    local = CONFIG["stages"]["local"]["environment_variables"]
    assert set(local) == {"OTP_SENDS_PER_CLIENT_PER_HOUR", "OTP_SENDS_PER_DAY"}
    assert int(local["OTP_SENDS_PER_CLIENT_PER_HOUR"]) >= 1000
    assert set(CONFIG["environment_variables"]) <= {"MIGRATE_LOCK_TIMEOUT", "MIGRATE_STATEMENT_TIMEOUT"}


@pytest.mark.parametrize("stage", DEPLOYED)
def test_stages_set_only_what_no_account_decides(stage: str) -> None:
    settings = CONFIG["stages"][stage]
    env = settings["environment_variables"]
    assert set(env) == {"DB_PREPARED_STATEMENTS", "WHATSAPP_API_URL", "STAGE"}
    assert env["WHATSAPP_API_URL"].startswith("https://graph.facebook.com/v")
    assert env["DB_PREPARED_STATEMENTS"] == "0", "transaction pooling (RDS Proxy) cannot keep prepared statements"
    assert "subnet_ids" not in settings
    assert "security_group_ids" not in settings
    assert settings["lambda_functions"]["migrate"]["lambda_timeout"] >= 300
    # The metrics' Stage dimension (chalicelib.platform.emf), and the SchemaDrift alarm's.
    assert env["STAGE"] == stage


def _imports(value: Any) -> list[str]:
    if isinstance(value, dict):
        if set(value) == {"Fn::ImportValue"}:
            return [value["Fn::ImportValue"]]
        return [name for inner in value.values() for name in _imports(inner)]
    if isinstance(value, list):
        return [name for inner in value for name in _imports(inner)]
    return []
