"""`make package`: the deployment zip and CloudFormation (SAM) template in build/package, checked.

1. ``chalice package --merge-template .chalice/template-merge.json``: chalice's template
   plus the queue, its dead-letter queue, partial batch responses, the queue policies,
   throttling and the outputs ``scripts/deploy`` reads;
2. bytecode in the zip: Lambda's code directory is read-only, so without ``.pyc`` files
   every cold start compiles every module it imports.  Compiled with this interpreter,
   which must be the runtime's minor version (chalice takes the runtime from it), as
   ``unchecked-hash`` pycs (valid whatever the files' times in the zip);
3. the expected schema of the release's migrations, replayed on the embedded PostgreSQL,
   as ``migrations/expected-schema.json`` (``scripts/expected_snapshot.py``): the gate that
   applies a new file compares with it instead of replaying on the RDS instance;
4. the schema gate (DESIGN.md, "Deploy: no code before its schema"): the custom
   resource ``SchemaMigration`` served by the ``migrate`` function, whose properties
   carry the zip's sha256 (so it runs at every release) and the code's schema
   contract (so ``OldResourceProperties`` describe the outgoing release); every
   other function depends on it.  And the ``SchemaDrift`` alarm on the drift
   watch's metric, for this stage, notifying ``AlarmTopic``;
5. abuse limits (``scripts/edge_protection.py``): the WAF web ACL on the API stage,
   per-method throttles (staff routes apart), the OTP budget alarm;
6. the operator's alarms, the dashboard and the X-Ray permissions (``scripts/observability.py``);
7. the foundation's values (``scripts/foundation_refs.py``): each function's name, subnets,
   security group, database endpoint, secrets, user pool, TLS settings, reserved
   concurrency and generated IAM policy, through ``Fn::ImportValue`` of the stack
   ``registration-foundation-<stage>`` (``infra/foundation.yaml``).  A stage whose config
   still holds a placeholder, or sets by hand what the foundation provides, is refused
   before anything is built, naming the key;
8. ``cfn-lint`` on the template.

    python scripts/package.py [--stage dev] [--out build/package] [--no-lint]
"""

import argparse
import compileall
import hashlib
import json
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MERGE_TEMPLATE = ROOT / ".chalice" / "template-merge.json"
CONFIG = ROOT / ".chalice" / "config.json"
BIN = Path(sys.executable).parent
GATE = "SchemaMigration"
MIGRATE = "Migrate"


class PackageError(Exception):
    """The package cannot be built as promised; the message says why."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/package.py", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default=os.environ.get("STAGE", "dev"))
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "package")
    parser.add_argument("--no-lint", action="store_true", help="skip cfn-lint")
    args = parser.parse_args(argv)
    try:
        check_stage(args.stage)
        template = package(args.stage, args.out)
        compiled = compile_zip(args.out / "deployment.zip", runtime(template))
        print(f"package: {compiled} modules compiled into {args.out / 'deployment.zip'}", file=sys.stderr)
        print(f"package: {add_expected_schema(args.out / 'deployment.zip')}", file=sys.stderr)
        add_schema_gate(template, args.stage, args.out / "deployment.zip")
        template = add_edge_protection(template, args.stage)
        add_observability(template, args.stage)
        add_foundation(template, args.stage)
        warn_without_ca_bundle(args.out / "deployment.zip")
        (args.out / "sam.json").write_text(json.dumps(template, indent=2) + "\n")
        print(f"package: {GATE} gates every function but {MIGRATE}", file=sys.stderr)
        if not args.no_lint:
            lint(args.out / "sam.json")
            print(f"package: cfn-lint found nothing in {args.out / 'sam.json'}", file=sys.stderr)
    except PackageError as error:
        print(f"package: {error}", file=sys.stderr)
        return 1
    return 0


def check_stage(stage: str) -> None:
    """Refuse a stage that is not deployable as configured: each problem named, nothing built."""
    import foundation_refs

    config = json.loads(CONFIG.read_text())
    problems = foundation_refs.check_config(config, stage) if stage != "local" else []
    if problems:
        raise PackageError(f"stage {stage} cannot be packaged:\n  " + "\n  ".join(problems))


def add_foundation(template: dict[str, Any], stage: str) -> None:
    """The foundation's exports and the generated policies (``foundation_refs``), in place; then nothing left over."""
    import foundation_refs

    foundation_refs.apply(template, stage)
    foundation_refs.apply_stack(template, stage)
    problems = foundation_refs.check_template(template)
    if problems:
        raise PackageError("the packaged template still holds placeholders:\n  " + "\n  ".join(problems))


def warn_without_ca_bundle(zip_path: Path) -> None:
    """Say so when the zip lacks the RDS CA bundle that migrate's and the drift watch's DB_SSLROOTCERT name.

    Only a warning: ``scripts/rds_ca_bundle.py`` fetches it (scripts/deploy and the pipeline run
    it first), and a package built offline for the tests has none.
    """
    import foundation_refs

    name = foundation_refs.RDS_CA_BUNDLE.removeprefix("/var/task/")
    with zipfile.ZipFile(zip_path) as archive:
        if name not in archive.namelist():
            print(
                f"package: warning: no {name} in the zip: migrate and the drift watch would refuse the instance's "
                "certificate in AWS; run scripts/rds_ca_bundle.py first (scripts/deploy does)",
                file=sys.stderr,
            )


def package(stage: str, out: Path) -> dict[str, Any]:
    """Run ``chalice package`` with the merge template into ``out``; the merged template."""
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "ap-southeast-3")}
    command = [str(BIN / "chalice"), "package", "--stage", stage, "--merge-template", str(MERGE_TEMPLATE), str(out)]
    if subprocess.run(command, cwd=ROOT, env=env, check=False).returncode != 0:  # noqa: S603 (our venv's chalice)
        raise PackageError("chalice package failed")
    template: dict[str, Any] = json.loads((out / "sam.json").read_text())
    return template


def add_schema_gate(template: dict[str, Any], stage: str, zip_path: Path) -> None:
    """The custom resource every other function waits for, and the SchemaDrift alarm (in place)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from chalicelib.schema_contract import contract_data

    resources: dict[str, Any] = template["Resources"]
    if MIGRATE not in resources:
        raise PackageError(f"no {MIGRATE} function in the template: the schema gate needs it")
    resources[GATE] = {
        "Type": "Custom::SchemaMigration",
        "Properties": {
            "ServiceToken": {"Fn::GetAtt": [MIGRATE, "Arn"]},
            # Changes with every release, so CloudFormation sends an Update every time.
            "Release": hashlib.sha256(zip_path.read_bytes()).hexdigest(),
            "Contract": json.dumps(contract_data(), sort_keys=True, separators=(",", ":")),
            # Past the function's own timeout: the timer inside answers first; this is the backstop.
            "ServiceTimeout": int(resources[MIGRATE]["Properties"].get("Timeout", 300)) + 60,
        },
    }
    # CloudFormation invokes the gate asynchronously: Lambda's default 2 retries would run it three times.
    resources[MIGRATE]["Properties"]["EventInvokeConfig"] = {"MaximumRetryAttempts": 0}
    for name, resource in resources.items():
        if resource["Type"] == "AWS::Serverless::Function" and name != MIGRATE:
            depends = resource.get("DependsOn", [])
            depends = [depends] if isinstance(depends, str) else list(depends)
            resource["DependsOn"] = [*depends, GATE] if GATE not in depends else depends
    resources["SchemaDriftAlarm"] = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": "verify found schema drift (the hourly watch): see docs/operations.md",
            "Namespace": "RegistrationBackend",
            "MetricName": "SchemaDrift",
            "Dimensions": [{"Name": "Stage", "Value": stage}],
            "Statistic": "Maximum",
            "Period": 3600,
            "EvaluationPeriods": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": "AlarmTopic"}],
        },
    }
    resources["SchemaDriftUnknownAlarm"] = _drift_unknown_alarm(stage)


def _drift_unknown_alarm(stage: str) -> dict[str, Any]:
    """A rollback that could not look at the database (``rollback.unknown``) says so as ``SchemaDriftUnknown``."""
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": "a rollback's schema gate could not reach the database: drift unknown, run verify "
            "(docs/deploy.md, What happens at deploy)",
            "Namespace": "RegistrationBackend",
            "MetricName": "SchemaDriftUnknown",
            "Dimensions": [{"Name": "Stage", "Value": stage}],
            "Statistic": "Maximum",
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": "AlarmTopic"}],
        },
    }


def add_edge_protection(template: dict[str, Any], stage: str) -> dict[str, Any]:
    """Abuse limits (issue 16): the WAF web ACL, per-method throttles, the OTP budget alarm."""
    from edge_protection import protect

    return protect(template, stage)


def add_expected_schema(zip_path: Path) -> str:
    """The migrations' expected schema, replayed, into the zip (expected_snapshot.py).

    On ``$EXPECTED_SCHEMA_DATABASE_URL`` when set (the pipeline: a PostgreSQL of the RDS
    instance's major version, infra/foundation.yaml), else on the embedded PostgreSQL.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import expected_snapshot

    return expected_snapshot.add_to_zip(zip_path, os.environ.get("EXPECTED_SCHEMA_DATABASE_URL") or None)


def add_observability(template: dict[str, Any], stage: str) -> None:
    """The alarms, the dashboard and the X-Ray permissions (``scripts/observability.py``), in place."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import observability

    from chalicelib.message_templates import TEMPLATES

    observability.add(template, stage, tuple(t.name for t in TEMPLATES))


def runtime(template: dict[str, Any]) -> str:
    """The one Python runtime the template's functions use (``python3.11``)."""
    resources = template["Resources"]
    assert isinstance(resources, dict)
    runtimes = {r["Properties"]["Runtime"] for r in resources.values() if r["Type"] == "AWS::Serverless::Function"}
    if len(runtimes) != 1:
        raise PackageError(f"expected one runtime, found {sorted(runtimes)}")
    return runtimes.pop()


def compile_zip(path: Path, runtime_name: str) -> int:
    """Add ``__pycache__/*.cpython-3XX.pyc`` for every module in the zip at ``path``; how many were compiled.

    Raises ``PackageError`` when this interpreter is not the runtime's version, or
    when one of the app's own modules does not compile.
    """
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if runtime_name != here:
        raise PackageError(f"the template's runtime is {runtime_name}; compile with that Python, not {here}")
    with tempfile.TemporaryDirectory(prefix="package-") as scratch:
        task = Path(scratch) / "task"
        with zipfile.ZipFile(path) as archive:
            # Any pyc chalice copied would be for whatever Python built it: replaced by ours.
            entries = [(i, archive.read(i)) for i in archive.infolist() if not i.filename.endswith(".pyc")]
            # Extract without them, or compileall would keep a timestamp-checked pyc it finds up to date.
            archive.extractall(task, members=[info for info, _ in entries])
        compileall.compile_dir(
            task,
            quiet=2,
            workers=0,
            stripdir=str(task),
            prependdir="/var/task",  # where Lambda unpacks the code: tracebacks name the real paths
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        own = ["app.py", *(str(p.relative_to(task)) for p in (task / "chalicelib").rglob("*.py"))]
        missing = [name for name in own if not _pyc_for(task, name).exists()]
        if missing:
            raise PackageError(f"did not compile: {', '.join(missing)}")
        pycs = sorted(p for p in task.rglob("*.pyc"))
        rebuilt = path.with_suffix(".tmp")
        with zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as archive:
            for info, data in entries:
                archive.writestr(info, data)
            for pyc in pycs:
                info = zipfile.ZipInfo(str(pyc.relative_to(task)), date_time=(2020, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, pyc.read_bytes())
        rebuilt.replace(path)
    return len(pycs)


def _pyc_for(root: Path, module: str) -> Path:
    source = root / module
    tag = sys.implementation.cache_tag
    return source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"


def lint(template: Path) -> None:
    result = subprocess.run([str(BIN / "cfn-lint"), str(template)], check=False)  # noqa: S603 (our venv's cfn-lint)
    if result.returncode != 0:
        raise PackageError(f"cfn-lint rejected {template} (see above)")


if __name__ == "__main__":
    sys.exit(main())
