"""Before the stack update: can the functions reach what the schema gate's answer depends on?

    python scripts/preflight.py [--stage dev] [--region ap-southeast-3] [--db-instance ID]

Reads the stage's subnets, the functions' security group and the database instance from
the outputs of the foundation stack ``registration-foundation-<stage>`` and checks,
through the EC2 and RDS describe APIs (nothing is changed):

- each subnet has a route to S3 (a gateway endpoint in its route table, or a NAT):
  without it ``migrate`` cannot PUT its answer to ``ResponseURL`` and the stack waits;
- Secrets Manager has an interface endpoint in the VPC (or the subnets have a NAT);
- the database's security group admits the functions' security group on its port
  (``--db-instance``, or every RDS instance in the VPC when none is named).

A route to the CloudFormation API (interface endpoint or NAT) is reported but not
required: without it the gate recognises a rollback by its own record alone.
Exit 0 when all is there, 1 naming each thing missing, 2 on bad usage.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FOUNDATION = "registration-foundation-{stage}"  # infra/foundation.yaml, deployed once per stage


def check(ec2: Any, rds: Any, region: str, subnets: Sequence[str], groups: Sequence[str], db: str | None) -> list[str]:
    """What is missing (empty when nothing is), as sentences an operator can act on."""
    found = ec2.describe_subnets(SubnetIds=list(subnets))["Subnets"]
    vpcs = {s["VpcId"] for s in found}
    if len(vpcs) != 1:
        return [f"the functions' subnets are in {len(vpcs)} VPCs ({', '.join(sorted(vpcs))}); expected one"]
    vpc = vpcs.pop()
    endpoints = _endpoints(ec2, vpc)
    missing: list[str] = []
    for subnet in subnets:
        table = _route_table(ec2, vpc, subnet)
        nat = _has_nat(table)
        s3 = any(
            e["ServiceName"] == f"com.amazonaws.{region}.s3" and table["RouteTableId"] in e.get("RouteTableIds", [])
            for e in endpoints
        )
        if not (s3 or nat):
            missing.append(
                f"subnet {subnet} has no route to S3 (route table {table['RouteTableId']}: no S3 gateway endpoint, "
                "no NAT): migrate could not answer CloudFormation"
            )
        if not nat and not _interface(endpoints, f"com.amazonaws.{region}.secretsmanager"):
            missing.append(
                f"subnet {subnet} cannot reach Secrets Manager (no interface endpoint "
                f"com.amazonaws.{region}.secretsmanager in {vpc}, no NAT): no function gets its database secret"
            )
    missing += _database_admits(ec2, rds, vpc, groups, db)
    return missing


def cloudformation_route(ec2: Any, region: str, subnets: Sequence[str]) -> bool:
    """True when every subnet reaches the CloudFormation API (interface endpoint or NAT)."""
    found = ec2.describe_subnets(SubnetIds=list(subnets))["Subnets"]
    vpc = found[0]["VpcId"]
    endpoints = _endpoints(ec2, vpc)
    if _interface(endpoints, f"com.amazonaws.{region}.cloudformation"):
        return True
    return all(_has_nat(_route_table(ec2, vpc, subnet)) for subnet in subnets)


def _endpoints(ec2: Any, vpc: str) -> list[dict[str, Any]]:
    """The VPC's endpoints that work (not deleted, failed or rejected)."""
    found = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
    return [
        e
        for e in found
        if str(e.get("State", "available")).lower() not in ("deleted", "deleting", "failed", "rejected")
    ]


def _route_table(ec2: Any, vpc: str, subnet: str) -> dict[str, Any]:
    """The subnet's route table: its own association, else the VPC's main table."""
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["RouteTables"]
    if not tables:
        tables = ec2.describe_route_tables(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}]
        )["RouteTables"]
    return dict(tables[0]) if tables else {"RouteTableId": "(none)", "Routes": []}


def _has_nat(table: dict[str, Any]) -> bool:
    return any(r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get("NatGatewayId") for r in table["Routes"])


def _interface(endpoints: list[dict[str, Any]], service: str) -> bool:
    return any(
        e["ServiceName"] == service and e.get("VpcEndpointType") == "Interface" and e.get("PrivateDnsEnabled", True)
        for e in endpoints
    )


def _database_admits(ec2: Any, rds: Any, vpc: str, groups: Sequence[str], db: str | None) -> list[str]:
    instances = rds.describe_db_instances(**({"DBInstanceIdentifier": db} if db else {}))["DBInstances"]
    instances = [i for i in instances if i.get("DBSubnetGroup", {}).get("VpcId", vpc) == vpc]
    if not instances:
        return [f"no RDS instance {db or 'in ' + vpc} to check the security group of"]
    missing = []
    for instance in instances:
        port = int(instance.get("Endpoint", {}).get("Port", 5432))
        ids = [g["VpcSecurityGroupId"] for g in instance.get("VpcSecurityGroups", [])]
        rules = ec2.describe_security_groups(GroupIds=ids)["SecurityGroups"] if ids else []
        admitted = {
            pair["GroupId"]
            for group in rules
            for permission in group.get("IpPermissions", [])
            if permission.get("IpProtocol") == "-1"
            or permission.get("FromPort", 0) <= port <= permission.get("ToPort", 65535)
            for pair in permission.get("UserIdGroupPairs", [])
        }
        for group in groups:
            if group not in admitted:
                missing.append(
                    f"the database {instance['DBInstanceIdentifier']}'s security groups ({', '.join(ids)}) do not "
                    f"admit the functions' security group {group} on port {port}"
                )
    return missing


def foundation_outputs(cloudformation: Any, stage: str) -> dict[str, str]:
    """The foundation stack's outputs by key; empty when the stack does not exist."""
    try:
        [stack] = cloudformation.describe_stacks(StackName=FOUNDATION.format(stage=stage))["Stacks"]
    except cloudformation.exceptions.ClientError:
        return {}
    return {str(o["OutputKey"]): str(o["OutputValue"]) for o in stack.get("Outputs", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/preflight.py", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--region", default="ap-southeast-3")
    parser.add_argument("--db-instance", help="the RDS instance identifier (default: every instance in the VPC)")
    args = parser.parse_args(argv)
    import boto3

    outputs = foundation_outputs(boto3.client("cloudformation", region_name=args.region), args.stage)
    subnets = [s for s in outputs.get("PrivateSubnetIds", "").split(",") if s]
    groups = [outputs["LambdaSecurityGroupId"]] if outputs.get("LambdaSecurityGroupId") else []
    if not subnets or not groups:
        print(
            f"preflight: the foundation stack {FOUNDATION.format(stage=args.stage)} has no PrivateSubnetIds or "
            "LambdaSecurityGroupId output: deploy infra/foundation.yaml first (docs/deploy.md)",
            file=sys.stderr,
        )
        return 2
    ec2, rds = boto3.client("ec2", region_name=args.region), boto3.client("rds", region_name=args.region)
    missing = check(ec2, rds, args.region, subnets, groups, args.db_instance or outputs.get("DbInstanceId"))
    for sentence in missing:
        print(f"preflight: missing: {sentence}", file=sys.stderr)
    if not cloudformation_route(ec2, args.region, subnets):
        print(
            "preflight: note: no route to the CloudFormation API (no interface endpoint, no NAT): the gate "
            "recognises a rollback by its own record only (docs/deploy.md)",
            file=sys.stderr,
        )
    if missing:
        print("preflight: the stack update would not be safe; nothing was deployed", file=sys.stderr)
        return 1
    print(f"preflight: {args.stage}: S3, Secrets Manager and the database are reachable", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
