""".chalice/config.json and the policy files: each stage's functions may read exactly their stage's secrets."""

import json
from typing import Any

import pytest

from tests.conftest import ROOT

CHALICE = ROOT / ".chalice"
CONFIG = json.loads((CHALICE / "config.json").read_text())
DEPLOYED = ["dev", "prod"]
REGION = "ap-southeast-3"
ACCOUNT = {"dev": "123456789012", "prod": "210987654321"}
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


def statements(stage: str, function: str) -> dict[str, Any]:
    path = CHALICE / CONFIG["stages"][stage]["lambda_functions"][function]["iam_policy_file"]
    return {s["Sid"]: s for s in json.loads(path.read_text())["Statement"]}


def test_policies_are_written_by_hand() -> None:
    assert CONFIG["autogen_policy"] is False


@pytest.mark.parametrize("stage", DEPLOYED)
@pytest.mark.parametrize("function", LOGICAL_ID)
def test_each_function_reads_its_own_secrets_and_no_other(stage: str, function: str) -> None:
    settings = CONFIG["stages"][stage]
    own = settings["lambda_functions"][function]["environment_variables"]
    assert sorted(k for k in own if k.endswith("_SECRET_ARN") and k != "DB_SECRET_ARN") == APP_SECRETS.get(function, [])
    expected = [own["DB_SECRET_ARN"]] + [own[k] for k in APP_SECRETS.get(function, [])]
    granted = statements(stage, function)["ReadSecrets"]
    assert granted["Action"] == "secretsmanager:GetSecretValue"
    # Secrets Manager appends six random characters to a secret's name in its ARN.
    assert granted["Resource"] == [arn + "-??????" for arn in expected]


@pytest.mark.parametrize("stage", DEPLOYED)
@pytest.mark.parametrize("function", LOGICAL_ID)
def test_only_migrate_and_its_watch_connect_as_the_schema_owner(stage: str, function: str) -> None:
    """Finding 7: the migrator's secret (the schema's owner, not the RDS master user) is migrate's and
    its hourly verify's; every other function has the runtime role's (rows only)."""
    db = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT[stage]}:secret:registration-{stage}-db"
    secret = CONFIG["stages"][stage]["lambda_functions"][function]["environment_variables"]["DB_SECRET_ARN"]
    assert secret == db + ("-migrator" if function in ("migrate", "schema_drift_watch") else "-runtime")
    # No function inherits a database secret from the stage: each names its own.
    assert "DB_SECRET_ARN" not in CONFIG["stages"][stage]["environment_variables"]


@pytest.mark.parametrize("stage", DEPLOYED)
@pytest.mark.parametrize("function", LOGICAL_ID)
def test_each_function_writes_only_its_own_log_groups(stage: str, function: str) -> None:
    # scripts/deploy names the stack registration-backend-<stage>; CloudFormation names
    # each function <stack>-<logical id>-<suffix>.
    group = f"log-group:/aws/lambda/registration-backend-{stage}-{LOGICAL_ID[function]}-*"
    assert all(group in resource for resource in statements(stage, function)["Logs"]["Resource"])


@pytest.mark.parametrize("stage", DEPLOYED)
def test_stages_have_their_environment_and_a_vpc(stage: str) -> None:
    settings = CONFIG["stages"][stage]
    env = settings["environment_variables"]
    assert {"AUTH_CLIENT_IDS", "WHATSAPP_API_URL", "WHATSAPP_PHONE_NUMBER_ID", "AUTH_JWKS_URL", "AUTH_ISSUER"} <= set(
        env
    )
    assert env["WHATSAPP_API_URL"].startswith("https://graph.facebook.com/v")
    assert not {"WHATSAPP_TOKEN", "OTP_HASH_KEY", "AUTH_JWT_SECRET", "DATABASE_URL"} & set(env)
    assert all(s.startswith("subnet-") for s in settings["subnet_ids"])
    assert all(g.startswith("sg-") for g in settings["security_group_ids"])
    assert settings["lambda_functions"]["migrate"]["lambda_timeout"] >= 300
    # The metrics' Stage dimension (chalicelib.platform.emf), and the SchemaDrift alarm's.
    assert env["STAGE"] == stage


def test_the_local_stage_sets_nothing_from_aws() -> None:
    """`chalice local` and the test client use it: the environment the stack or test sets wins.

    It only raises the OTP limits, so that `make run`, the fuzzer and the tests, all
    from one address, are not taken for a pumping attack (at least 1,000 an hour).
    """
    local = CONFIG["stages"]["local"]["environment_variables"]
    assert set(local) == {"OTP_SENDS_PER_CLIENT_PER_HOUR", "OTP_SENDS_PER_DAY"}
    assert int(local["OTP_SENDS_PER_CLIENT_PER_HOUR"]) >= 1000
    assert set(CONFIG["environment_variables"]) <= {"MIGRATE_LOCK_TIMEOUT", "MIGRATE_STATEMENT_TIMEOUT"}
