"""The deploy, one implementation: ``scripts/deploy`` at a terminal and the pipeline both run this.

    scripts/deploy [--stage dev|prod] [--dry-run] [--prebuilt] [--no-verify | --verify-only]

1. ``scripts/rds_ca_bundle.py`` (AWS's RDS CA bundle into the package) and ``scripts/package.py`` (both
   skipped with ``--prebuilt``: the pipeline's package job built
   ``sam.json`` and ``deployment.zip`` into ``$DEPLOY_OUT`` already);
2. ``aws cloudformation package``: uploads the zip to the deploy bucket (``$DEPLOY_BUCKET``,
   else the foundation's export ``registration-<stage>-DeployBucketName``);
3. ``scripts/preflight.py``: the subnets reach S3 and Secrets Manager, the database admits
   the functions (``$DB_INSTANCE_ID`` names the instance);
4. ``aws cloudformation deploy`` of stack ``registration-backend-<stage>``, with the foundation's
   CloudFormation execution role (``--role-arn``: the export ``registration-<stage>-CloudFormationRoleArn``,
   or ``$CLOUDFORMATION_ROLE_ARN``; the deploy role may only pass it): the schema gate
   runs inside it, before any other function's code switches; ``$ALARM_EMAIL`` is passed
   as the ``AlarmEmail`` parameter when set;
5. verify: invokes the stack's ``migrate`` function with ``{"action": "verify"}`` and fails
   on drift, naming each one; then ``GET /packages`` on the stack's API.

On a failed deploy it prints each failed resource with CloudFormation's reason from the
stack events (the gate's ``Reason`` first, ``scripts/gate_report.py``), keeps them in
``$DEPLOY_OUT/stack-events.json``, and prints the gate's whole report from the migrate
function's log.  ``--dry-run`` prints every command and call instead (nothing is built
or called).  Exit 0 when deployed and verified, 1 on a failed step or drift, 2 on bad usage.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gate_report
from botocore.exceptions import BotoCoreError, ClientError

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("dev", "prod")
MIGRATE = "Migrate"
VERIFY = {"action": "verify"}
#: Runs one command (argv), returns its exit status; the pipeline's and a person's are the same.
Runner = Callable[[Sequence[str]], int]
#: Makes a boto3 client by service name (tests pass stubbed ones).
Clients = Callable[[str], Any]


@dataclass(frozen=True)
class Plan:
    """What one deploy does, from the arguments and the environment."""

    stage: str
    region: str
    out: Path
    python: str
    bucket: str | None
    role: str | None
    alarm_email: str | None
    db_instance: str | None
    prebuilt: bool

    @property
    def stack(self) -> str:
        return f"registration-backend-{self.stage}"

    @property
    def bucket_export(self) -> str:
        return f"registration-{self.stage}-DeployBucketName"

    @property
    def role_export(self) -> str:
        """The role CloudFormation creates the app stack's resources with (the deploy role may only pass it)."""
        return f"registration-{self.stage}-CloudFormationRoleArn"


@dataclass(frozen=True)
class Verdict:
    """What the verify invoke said: ok, and the lines to print."""

    ok: bool
    lines: list[str]


def main(argv: Sequence[str] | None = None, runner: Runner | None = None, clients: Clients | None = None) -> int:
    args = _parser().parse_args(argv)  # exits 2 on bad usage
    plan = Plan(
        stage=args.stage,
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "ap-southeast-3",
        out=Path(os.environ.get("DEPLOY_OUT", "build/package")),
        python=_relative(sys.executable),
        bucket=os.environ.get("DEPLOY_BUCKET") or None,
        role=os.environ.get("CLOUDFORMATION_ROLE_ARN") or None,
        alarm_email=os.environ.get("ALARM_EMAIL") or None,
        db_instance=os.environ.get("DB_INSTANCE_ID") or None,
        prebuilt=args.prebuilt,
    )
    if args.dry_run:
        for line in dry_run(plan, verify=not args.no_verify, deploy=not args.verify_only):
            print(line)
        return 0
    run = runner or _run
    make = clients or _boto3_clients(plan.region)
    if args.verify_only:
        return verify(plan, make)
    return deploy(plan, run, make, verify_after=not args.no_verify)


def deploy(plan: Plan, run: Runner, clients: Clients, *, verify_after: bool = True) -> int:
    """Package, upload, preflight, deploy, then verify; on a failed deploy, print why from the stack's events."""
    exports = Exports(clients("cloudformation"))
    bucket = plan.bucket or exports.need(plan.bucket_export, plan, "or set DEPLOY_BUCKET")
    if bucket is None:
        return 2
    steps = [
        *([] if plan.prebuilt else [ca_bundle_command(plan), package_command(plan)]),
        upload_command(plan, bucket),
        preflight_command(plan),
    ]
    for step in steps:
        if run(step) != 0:
            print(f"scripts/deploy: {_name(step)} failed; nothing was deployed", file=sys.stderr)
            return 1
    role = plan.role or exports.need(plan.role_export, plan, "or set CLOUDFORMATION_ROLE_ARN")
    if role is None:
        print("scripts/deploy: nothing was deployed", file=sys.stderr)
        return 2
    if run(deploy_command(plan, role)) != 0:
        print(
            "scripts/deploy: the deploy failed; CloudFormation rolled the stack back (the old code kept serving)",
            file=sys.stderr,
        )
        report_failure(plan, clients("cloudformation"), clients("logs"))
        return 1
    return verify(plan, clients) if verify_after else 0


def dry_run(plan: Plan, *, verify: bool = True, deploy: bool = True) -> list[str]:
    """Every command and call, in order, as a person would type them."""
    bucket = plan.bucket or f"<export {plan.bucket_export}>"
    commands = [ca_bundle_command(plan), package_command(plan)] if deploy and not plan.prebuilt else []
    if deploy:
        role = plan.role or f"<export {plan.role_export}>"
        commands += [upload_command(plan, bucket), preflight_command(plan), deploy_command(plan, role)]
    lines = [shlex.join(command) for command in commands]
    if verify:
        function = f"<{MIGRATE} of {plan.stack}>"
        invoke = ["aws", "lambda", "invoke", "--region", plan.region, "--function-name", function]
        invoke += ["--cli-binary-format", "raw-in-base64-out", "--payload", json.dumps(VERIFY), "verify.json"]
        lines += [shlex.join(invoke), f"GET <EndpointURL of {plan.stack}>packages"]
    if deploy:
        events = ["aws", "cloudformation", "describe-stack-events", "--region", plan.region]
        events += ["--stack-name", plan.stack, "--output", "json"]
        lines += [
            "# on failure:",
            f"{shlex.join(events)} > {plan.out}/stack-events.json",
            shlex.join([plan.python, "scripts/gate_report.py", f"{plan.out}/stack-events.json"]),
            f"aws logs tail /aws/lambda/<{MIGRATE}> --region {plan.region} --since 1h --filter-pattern migrate_gate",
        ]
    return lines


def ca_bundle_command(plan: Plan) -> list[str]:
    """AWS's RDS CA bundle, fetched and checked, into the package (migrate and the watch verify RDS with it)."""
    return [plan.python, "scripts/rds_ca_bundle.py"]


def package_command(plan: Plan) -> list[str]:
    return [plan.python, "scripts/package.py", "--stage", plan.stage, "--out", str(plan.out)]


def upload_command(plan: Plan, bucket: str) -> list[str]:
    return [
        *("aws", "cloudformation", "package", "--region", plan.region),
        *("--template-file", f"{plan.out}/sam.json", "--s3-bucket", bucket, "--s3-prefix", plan.stack),
        *("--use-json", "--output-template-file", f"{plan.out}/packaged.json"),
    ]


def preflight_command(plan: Plan) -> list[str]:
    command = [plan.python, "scripts/preflight.py", "--stage", plan.stage, "--region", plan.region]
    return command + (["--db-instance", plan.db_instance] if plan.db_instance else [])


def deploy_command(plan: Plan, role_arn: str) -> list[str]:
    command = [
        *("aws", "cloudformation", "deploy", "--region", plan.region),
        *("--template-file", f"{plan.out}/packaged.json", "--stack-name", plan.stack),
        *("--role-arn", role_arn),
        *("--capabilities", "CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND", "--no-fail-on-empty-changeset"),
    ]
    return command + (["--parameter-overrides", f"AlarmEmail={plan.alarm_email}"] if plan.alarm_email else [])


class Exports:
    """The account's CloudFormation exports, read once (the foundation's outputs: docs/deploy.md)."""

    def __init__(self, cloudformation: Any) -> None:
        self._cloudformation = cloudformation
        self._values: dict[str, str] | None = None
        self._error: str | None = None

    def need(self, name: str, plan: Plan, instead: str) -> str | None:
        """The export's value; None (and why, printed) when there is none."""
        if self._values is None:
            self._values = {}
            try:
                for page in self._cloudformation.get_paginator("list_exports").paginate():
                    self._values.update({e["Name"]: str(e["Value"]) for e in page.get("Exports", [])})
            except (BotoCoreError, ClientError) as error:
                self._error = f"could not read the exports ({error})"
        if name in self._values:
            return self._values[name]
        print(
            f"scripts/deploy: {self._error or f'no export {name}'}: deploy the foundation stack "
            f"registration-foundation-{plan.stage} first (docs/deploy.md, First deploy), {instead}",
            file=sys.stderr,
        )
        return None


def report_failure(plan: Plan, cloudformation: Any, logs: Any) -> None:
    """Print each failed resource and its reason (the gate first), then the gate's report from its log."""
    events: list[dict[str, Any]] = []
    for page in cloudformation.get_paginator("describe_stack_events").paginate(
        StackName=plan.stack, PaginationConfig={"MaxItems": 300}
    ):
        events += page["StackEvents"]
    out = ROOT / plan.out  # the commands run in the project's root; an absolute DEPLOY_OUT stays as it is
    out.mkdir(parents=True, exist_ok=True)
    (out / "stack-events.json").write_text(json.dumps({"StackEvents": events}, indent=1, default=str))
    gate_report.explain(events)
    try:
        group = f"/aws/lambda/{migrate_function(cloudformation, plan)}"
        print(f"the gate's whole report, from its log ({group}, filter migrate_gate, the last hour):", file=sys.stderr)
        since = int((time.time() - 3600) * 1000)
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=group, filterPattern="migrate_gate", startTime=since
        )
        for event in (event for page in pages for event in page.get("events", [])):
            print(str(event["message"]).rstrip(), file=sys.stderr)
    except (BotoCoreError, ClientError) as error:  # a first create rolled back leaves no function, no log group
        print(f"(no log of the gate to show: {error})", file=sys.stderr)


def verify(plan: Plan, clients: Clients) -> int:
    """Invoke migrate with ``{"action": "verify"}``: 0 when the database is as the code expects, 1 naming each drift."""
    cloudformation = clients("cloudformation")
    function = migrate_function(cloudformation, plan)
    answer = clients("lambda").invoke(FunctionName=function, Payload=json.dumps(VERIFY).encode())
    result = verdict(answer["Payload"].read(), answer.get("FunctionError"))
    stream = sys.stdout if result.ok else sys.stderr
    for line in result.lines:
        print(f"verify: {line}", file=stream)
    if not result.ok:
        print(
            f"scripts/deploy: {plan.stack} is deployed but its database has drifted: run each fix, then "
            f"scripts/deploy --stage {plan.stage} --verify-only (docs/migrations.md)",
            file=sys.stderr,
        )
        return 1
    return smoke(endpoint(cloudformation, plan))


def verdict(payload: bytes, function_error: str | None) -> Verdict:
    """What migrate answered to verify: its report when ok, or the report (or error) it raised.

    The function returns the report when ok and raises ``MigrationError`` carrying the
    report as JSON otherwise; Lambda then sets ``FunctionError`` and the payload is
    ``{"errorType", "errorMessage"}``.  A timeout or a crash is not ok either.
    """
    try:
        body = json.loads(payload or b"null")
    except ValueError:
        return Verdict(False, [f"migrate answered something that is not JSON: {payload[:200]!r}"])
    report = body if isinstance(body, dict) else {}
    if function_error:
        try:
            report = json.loads(str(report.get("errorMessage", "")))
        except ValueError:
            kind, message = report.get("errorType", function_error), report.get("errorMessage", "")
            return Verdict(False, [f"migrate failed ({kind}): {message}"])
    if not isinstance(report, dict) or "ok" not in report:
        return Verdict(False, [f"migrate answered without a report: {str(body)[:200]}"])
    if report["ok"] and not function_error:
        return Verdict(True, [f"ok: {len(report.get('checked', []))} checks, no drift"])
    drift = report.get("drift") or []
    lines = [f"{len(drift)} drift(s) found"]
    for found in drift:
        lines.append(f"{found.get('kind')}: {found.get('message')}")
        if found.get("fix_sql"):
            lines.append(f"  fix: {found['fix_sql']}")
    return Verdict(False, lines)


def migrate_function(cloudformation: Any, plan: Plan) -> str:
    """The physical name of the stack's migrate function."""
    found = cloudformation.describe_stack_resource(StackName=plan.stack, LogicalResourceId=MIGRATE)
    return str(found["StackResourceDetail"]["PhysicalResourceId"])


def endpoint(cloudformation: Any, plan: Plan) -> str | None:
    """The stack's API URL (chalice's ``EndpointURL`` output), or None."""
    [stack] = cloudformation.describe_stacks(StackName=plan.stack)["Stacks"]
    return next((str(o["OutputValue"]) for o in stack.get("Outputs", []) if o["OutputKey"] == "EndpointURL"), None)


def smoke(url: str | None, tries: int = 3) -> int:
    """``GET /packages`` answers 200 with a JSON list: the API is served.  1 when it does not."""
    if url is None:
        print("scripts/deploy: the stack has no EndpointURL output", file=sys.stderr)
        return 1
    target = url.rstrip("/") + "/packages"
    problem = ""
    for attempt in range(tries):
        try:
            with urllib.request.urlopen(target, timeout=10) as response:  # noqa: S310 (https, from our own stack)
                packages = json.loads(response.read())
            print(f"GET {target}: {response.status}, {len(packages)} active package(s)")
            return 0
        except (OSError, ValueError) as error:
            problem = str(error)
            if attempt + 1 < tries:  # a new stage's first requests can meet a cold start
                time.sleep(2**attempt)
    print(f"scripts/deploy: GET {target} failed: {problem}", file=sys.stderr)
    return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=STAGES, default="dev")
    parser.add_argument("--dry-run", action="store_true", help="print every command and call; run nothing")
    parser.add_argument(
        "--prebuilt", action="store_true", help="deploy the package already in $DEPLOY_OUT (the pipeline's artifact)"
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--no-verify", action="store_true", help="stop after the stack update")
    only.add_argument("--verify-only", action="store_true", help="only invoke migrate's verify, and GET /packages")
    return parser


def _run(command: Sequence[str]) -> int:
    print(f"+ {shlex.join(command)}", file=sys.stderr, flush=True)
    return subprocess.run(command, cwd=ROOT, check=False).returncode  # noqa: S603 (our own argv, no shell)


def _relative(path: str) -> str:
    """``path`` from the project's root when it is inside it (commands run there): shorter to read."""
    return os.path.relpath(path, ROOT) if Path(path).is_relative_to(ROOT) else path


def _name(command: Sequence[str]) -> str:
    return " ".join(command[1:3]) if command[0] == "aws" else command[1]


def _boto3_clients(region: str) -> Clients:
    import boto3
    from botocore.config import Config

    # verify can take as long as the function's timeout (300 s); a retried read would invoke it again.
    slow = Config(read_timeout=330, retries={"total_max_attempts": 1})

    def make(service: str) -> Any:
        return boto3.client(service, region_name=region, config=slow if service == "lambda" else None)

    return make


if __name__ == "__main__":
    sys.exit(main())
