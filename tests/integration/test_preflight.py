"""scripts/preflight.py on moto's EC2 and RDS: what the gate's answer needs is there, or named as missing."""

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import preflight

REGION = "ap-southeast-3"


@dataclass
class Network:
    ec2: Any
    rds: Any
    vpc: str
    subnets: list[str]
    table: str
    functions: str
    database: str


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> Iterator[Network]:
    """A VPC with two private subnets on one route table, the functions' and the database's security groups."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        ec2, rds = boto3.client("ec2", region_name=REGION), boto3.client("rds", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24")["Subnet"]["SubnetId"] for n in (1, 2)]
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        for subnet in subnets:
            ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
        functions = ec2.create_security_group(GroupName="functions", Description="f", VpcId=vpc)["GroupId"]
        database = ec2.create_security_group(GroupName="database", Description="d", VpcId=vpc)["GroupId"]
        rds.create_db_instance(
            DBInstanceIdentifier="registration-dev",
            DBInstanceClass="db.t4g.micro",
            Engine="postgres",
            MasterUsername="migrator",
            MasterUserPassword="not-a-real-password",
            VpcSecurityGroupIds=[database],
        )
        yield Network(ec2, rds, vpc, subnets, table, functions, database)


def complete(network: Network) -> None:
    ec2 = network.ec2
    ec2.create_vpc_endpoint(
        VpcId=network.vpc,
        ServiceName=f"com.amazonaws.{REGION}.s3",
        VpcEndpointType="Gateway",
        RouteTableIds=[network.table],
    )
    ec2.create_vpc_endpoint(
        VpcId=network.vpc,
        ServiceName=f"com.amazonaws.{REGION}.secretsmanager",
        VpcEndpointType="Interface",
        SubnetIds=network.subnets,
        PrivateDnsEnabled=True,
    )
    ec2.authorize_security_group_ingress(
        GroupId=network.database,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 5432,
                "ToPort": 5432,
                "UserIdGroupPairs": [{"GroupId": network.functions}],
            }
        ],
    )


def check(network: Network) -> list[str]:
    return preflight.check(network.ec2, network.rds, REGION, network.subnets, [network.functions], "registration-dev")


def test_nothing_is_missing_with_the_endpoints_and_the_rule(network: Network) -> None:
    complete(network)
    assert check(network) == []
    assert not preflight.cloudformation_route(network.ec2, REGION, network.subnets)


def test_a_bare_vpc_names_each_thing_missing(network: Network) -> None:
    missing = check(network)
    for subnet in network.subnets:
        assert any(m.startswith(f"subnet {subnet} has no route to S3") for m in missing)
        assert any(m.startswith(f"subnet {subnet} cannot reach Secrets Manager") for m in missing)
    assert any(f"do not admit the functions' security group {network.functions} on port 5432" in m for m in missing)
    assert len(missing) == 5


def test_a_nat_serves_s3_and_secrets_manager(network: Network) -> None:
    complete(network)
    ec2 = network.ec2
    endpoints = ec2.describe_vpc_endpoints()["VpcEndpoints"]
    ec2.delete_vpc_endpoints(VpcEndpointIds=[e["VpcEndpointId"] for e in endpoints])
    assert len(check(network)) == 4
    public = ec2.create_subnet(VpcId=network.vpc, CidrBlock="10.0.9.0/24")["Subnet"]["SubnetId"]
    nat = ec2.create_nat_gateway(SubnetId=public)["NatGateway"]["NatGatewayId"]
    ec2.create_route(RouteTableId=network.table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)

    assert check(network) == []
    assert preflight.cloudformation_route(network.ec2, REGION, network.subnets)


def test_a_rule_for_another_port_or_group_does_not_count(network: Network) -> None:
    complete(network)
    other = network.ec2.create_security_group(GroupName="other", Description="o", VpcId=network.vpc)["GroupId"]

    missing = preflight.check(network.ec2, network.rds, REGION, network.subnets, [other], "registration-dev")

    assert missing == [
        f"the database registration-dev's security groups ({network.database}) do not admit the functions' "
        f"security group {other} on port 5432"
    ]
