"""infra/foundation.yaml: what each stage's foundation promises (issue 21), read from the template itself.

cfn-lint checks that CloudFormation would accept it; these tests check that it says what the
issue asks: TLS forced, the database kept, the proxy on the runtime login, the staff groups, the
log retention, the exports the app stack and the pipeline import, and a deploy role no wider
than a deploy.
"""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import decode  # type: ignore[import-untyped]  # cfn-lint ships no type hints
from moto import mock_aws

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import foundation_refs
import preflight

TEMPLATE = ROOT / "infra" / "foundation.yaml"
REGION = "ap-southeast-3"
# Pinned: the app stack (scripts/foundation_refs.py) and the pipeline (scripts/deploy.py) import these.
EXPORTS = {
    "PrivateSubnetIds",
    "LambdaSecurityGroupId",
    "DbInstanceEndpoint",
    "DbProxyEndpoint",
    "DbName",
    "DbInstanceId",
    "DbMasterSecretArn",
    "DbMigratorSecretArn",
    "DbRuntimeSecretArn",
    "DbWatchSecretArn",
    "OtpSecretArn",
    "WhatsAppSecretArn",
    "WhatsAppPhoneNumberId",
    "LogKeyArn",
    "UserPoolId",
    "UserPoolClientId",
    "AlarmTopicArn",
    "DeployBucketName",
    "DeployRoleArn",
    "CloudFormationRoleArn",
    "ApiGatewayAccountReady",
}


@pytest.fixture(scope="module")
def foundation() -> dict[str, Any]:
    template, errors = decode(str(TEMPLATE))
    assert not errors, errors
    assert template is not None
    return dict(template)


def of_type(foundation: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in foundation["Resources"].items() if r["Type"] == kind}


def test_cfn_lint_accepts_every_infra_template() -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    templates = sorted(str(p) for p in (ROOT / "infra").glob("*.yaml"))
    result = subprocess.run([str(cfn_lint), *templates], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout


def test_the_database_forces_tls_is_encrypted_and_outlives_its_stack(foundation: dict[str, Any]) -> None:
    [(_name, db)] = of_type(foundation, "AWS::RDS::DBInstance").items()
    properties = db["Properties"]
    assert (db["DeletionPolicy"], db["UpdateReplacePolicy"]) == ("Snapshot", "Snapshot")
    assert properties["StorageEncrypted"] is True
    assert properties["DeletionProtection"] is True
    assert properties["ManageMasterUserPassword"] is True
    assert properties["PubliclyAccessible"] is False
    retention = properties["BackupRetentionPeriod"]
    assert all(days >= 7 for days in (retention["Fn::If"][1:] if isinstance(retention, dict) else [retention]))
    engine = foundation["Mappings"]["Engine"]["postgres"]
    assert properties["Engine"] == "postgres"
    assert int(engine["Version"].split(".")[0]) >= 16
    [group] = of_type(foundation, "AWS::RDS::DBParameterGroup").values()
    assert group["Properties"]["Parameters"]["rds.force_ssl"] == "1"
    assert group["Properties"]["Family"] == {"Fn::FindInMap": ["Engine", "postgres", "Family"]}
    assert engine["Family"] == f"postgres{engine['Version'].split('.')[0]}"


def test_the_proxy_requires_tls_and_authenticates_with_the_runtime_login(foundation: dict[str, Any]) -> None:
    [proxy] = of_type(foundation, "AWS::RDS::DBProxy").values()
    assert proxy["Properties"]["RequireTLS"] is True
    assert proxy["Properties"]["EngineFamily"] == "POSTGRESQL"
    assert [a["SecretArn"] for a in proxy["Properties"]["Auth"]] == [{"Ref": "DbRuntimeSecret"}]
    [target] = of_type(foundation, "AWS::RDS::DBProxyTargetGroup").values()
    assert target["Properties"]["DBInstanceIdentifiers"] == [{"Ref": "DbInstance"}]


def test_each_login_has_its_secret_and_the_database_ones_rotate(foundation: dict[str, Any]) -> None:
    secrets = of_type(foundation, "AWS::SecretsManager::Secret")
    assert set(secrets) == {"DbMigratorSecret", "DbRuntimeSecret", "DbWatchSecret", "OtpSecret", "WhatsAppSecret"}
    users = {
        name: secret["Properties"]["GenerateSecretString"]["SecretStringTemplate"]
        for name, secret in secrets.items()
        if name.startswith("Db")
    }
    assert '"registration_drift_watch"' in users["DbWatchSecret"]
    rotated = {
        r["Properties"]["SecretId"]["Ref"]: r["Properties"]
        for r in of_type(foundation, "AWS::SecretsManager::RotationSchedule").values()
    }
    assert set(rotated) == {"DbMigratorSecret", "DbRuntimeSecret", "DbWatchSecret"}
    for schedule in rotated.values():
        assert schedule["HostedRotationLambda"]["RotationType"] in ("PostgreSQLSingleUser", "PostgreSQLMultiUser")
        # The logins exist only once scripts/db_roles.sql has run: no rotation before then.
        assert schedule["RotateImmediatelyOnUpdate"] is False
    assert "AWS::SecretsManager-2020-07-23" in str(foundation["Transform"])


def test_the_network_admits_only_the_functions_to_the_database(foundation: dict[str, Any]) -> None:
    groups = of_type(foundation, "AWS::EC2::SecurityGroup")
    assert "SecurityGroupIngress" not in groups["LambdaSecurityGroup"]["Properties"], "nothing inbound"
    for name in ("DatabaseSecurityGroup", "ProxySecurityGroup"):
        rules = groups[name]["Properties"]["SecurityGroupIngress"]
        assert all("CidrIp" not in rule and rule["FromPort"] == rule["ToPort"] == 5432 for rule in rules), name
    sources = {
        r["SourceSecurityGroupId"]["Ref"] for r in groups["ProxySecurityGroup"]["Properties"]["SecurityGroupIngress"]
    }
    assert sources == {"LambdaSecurityGroup"}
    endpoints = {
        (e["Properties"]["ServiceName"]["Fn::Sub"], e["Properties"]["VpcEndpointType"])
        for e in of_type(foundation, "AWS::EC2::VPCEndpoint").values()
    }
    assert ("com.amazonaws.${AWS::Region}.s3", "Gateway") in endpoints
    assert ("com.amazonaws.${AWS::Region}.secretsmanager", "Interface") in endpoints
    azs = {
        s["Properties"]["AvailabilityZone"]["Fn::Select"][0] for s in of_type(foundation, "AWS::EC2::Subnet").values()
    }
    assert azs == {0, 1}


def test_the_user_pool_has_the_four_staff_groups_and_admins_make_users(foundation: dict[str, Any]) -> None:
    groups = {g["Properties"]["GroupName"] for g in of_type(foundation, "AWS::Cognito::UserPoolGroup").values()}
    assert groups == {"cs", "surveyor", "approver", "admin"}
    [pool] = of_type(foundation, "AWS::Cognito::UserPool").values()
    assert pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    [client] = of_type(foundation, "AWS::Cognito::UserPoolClient").values()
    assert client["Properties"]["GenerateSecret"] is False


def test_every_function_has_a_log_group_kept_90_days_by_default(foundation: dict[str, Any]) -> None:
    assert foundation["Parameters"]["LogRetentionDays"]["Default"] == 90
    groups = of_type(foundation, "AWS::Logs::LogGroup")
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    names = {str(g["Properties"]["LogGroupName"]["Fn::Sub"]) for g in groups.values()}
    for function in foundation_refs.FUNCTIONS.values():
        assert f"/aws/lambda/registration-backend-${{Stage}}-{function.logical_id}" in names


def test_the_deploy_bucket_is_private_encrypted_and_versioned(foundation: dict[str, Any]) -> None:
    bucket = foundation["Resources"]["DeployBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"


def test_the_exports_are_the_pinned_names(foundation: dict[str, Any]) -> None:
    outputs = foundation["Outputs"]
    assert set(outputs) == EXPORTS
    for name, output in outputs.items():
        assert output["Export"]["Name"] == {"Fn::Sub": f"registration-${{Stage}}-{name}"}
    assert foundation["Parameters"]["Stage"]["AllowedValues"] == ["dev", "prod"]


def test_the_deploy_role_trusts_one_repository_environment_and_may_only_deploy(foundation: dict[str, Any]) -> None:
    role = foundation["Resources"]["DeployRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    condition = trust["Condition"]["StringEquals"]
    assert condition["token.actions.githubusercontent.com:sub"] == {
        "Fn::Sub": "repo:${GitHubRepository}:environment:${Stage}"
    }
    assert condition["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    [policy] = role["Policies"]
    actions = set()
    for statement in policy["PolicyDocument"]["Statement"]:
        actions |= {statement["Action"]} if isinstance(statement["Action"], str) else set(statement["Action"])
    creates = {a for a in actions if a.split(":")[1].startswith(("Create", "Put", "Update", "Delete", "Attach"))}
    # It changes nothing itself but change sets and the uploaded package; CloudFormation acts as the execution role.
    assert creates == {"cloudformation:CreateChangeSet", "cloudformation:DeleteChangeSet", "s3:PutObject"}
    passes = [s for s in policy["PolicyDocument"]["Statement"] if s["Action"] == "iam:PassRole"]
    assert [s["Resource"] for s in passes] == [{"Fn::GetAtt": ["CloudFormationExecutionRole", "Arn"]}]
    assert "lambda:InvokeFunction" in actions
    assert "cloudformation:DescribeStackEvents" in actions


@pytest.fixture
def cloudformation(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.client("cloudformation", region_name=REGION)


def test_preflight_reads_the_network_from_the_foundation_stack(cloudformation: Any) -> None:
    """moto's CloudFormation: a stack named as the foundation, with its outputs (the real template needs
    services moto does not deploy, such as RDS Proxy)."""
    body = """
Resources:
  Topic: {Type: AWS::SNS::Topic}
Outputs:
  PrivateSubnetIds: {Value: "subnet-aaaa,subnet-bbbb"}
  LambdaSecurityGroupId: {Value: sg-cccc}
  DbInstanceId: {Value: registration-dev}
"""
    assert preflight.foundation_outputs(cloudformation, "dev") == {}
    cloudformation.create_stack(StackName="registration-foundation-dev", TemplateBody=body)
    outputs = preflight.foundation_outputs(cloudformation, "dev")
    assert outputs["PrivateSubnetIds"].split(",") == ["subnet-aaaa", "subnet-bbbb"]
    assert (outputs["LambdaSecurityGroupId"], outputs["DbInstanceId"]) == ("sg-cccc", "registration-dev")
