"""`make package` (scripts/package.py): the zip carries the migrations and bytecode, the template what AWS needs.

Each stage is packaged once per test run, by whichever xdist worker comes first (under
a file lock; the others reuse its output).
"""

import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chalicelib.schema_contract import contract_data
from tests.conftest import MIGRATIONS, ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import foundation_refs

RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
FUNCTIONS = (
    "APIHandler",
    "CustomerWorker",
    "SendNotifications",
    "Migrate",
    "PurgeIdempotencyKeys",
    "ExpireRegistrations",
    "SchemaDriftWatch",
    "PurgePersonalData",
)


@pytest.fixture(scope="module", params=["dev", "prod"])
def package(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The base temp's parent is shared by the run's xdist workers.
    shared = tmp_path_factory.getbasetemp().parent
    out, done = shared / f"package-{request.param}", shared / f"package-{request.param}.done"
    env = {**os.environ, "AWS_DEFAULT_REGION": "ap-southeast-3"}
    with (shared / "package.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            command = [sys.executable, "scripts/package.py", "--stage", request.param, "--out", str(out)]
            result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, result.stdout + result.stderr
            done.touch()
    return out


@pytest.fixture(scope="module")
def template(package: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((package / "sam.json").read_text())
    return loaded


def app_routes() -> dict[str, Any]:
    import app as app_module

    return dict(app_module.app.routes)


def resources(template: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = template["Resources"]
    return found


@pytest.mark.slow
def test_every_migration_is_in_the_zip_byte_for_byte(package: Path) -> None:
    with zipfile.ZipFile(package / "deployment.zip") as archive:
        names = [n for n in archive.namelist() if n.startswith("migrations/") and n.endswith(".sql")]
        packaged = {Path(name).name: archive.read(name) for name in names}
    on_disk = {path.name: path.read_bytes() for path in MIGRATIONS.glob("*.sql")}
    assert on_disk, "no migrations found on disk"
    assert packaged == on_disk


@pytest.mark.slow
def test_the_zip_ships_unchecked_hash_bytecode_for_the_runtime(package: Path) -> None:
    tag = sys.implementation.cache_tag
    with zipfile.ZipFile(package / "deployment.zip") as archive:
        names = set(archive.namelist())
        own = [n for n in names if n == "app.py" or (n.startswith("chalicelib/") and n.endswith(".py"))]
        expected = {str(Path(n).parent / "__pycache__" / f"{Path(n).stem}.{tag}.pyc").removeprefix("./") for n in own}
        assert expected <= names, sorted(expected - names)
        pycs = [n for n in names if n.endswith(".pyc")]
        assert all(f".{tag}.pyc" in n for n in pycs)
        assert any(n.startswith("pydantic/") for n in pycs), "the dependencies are compiled too"
        # PEP 552 flags: 0b01 = hash-based, source not checked.
        assert {int.from_bytes(archive.read(n)[4:8], "little") for n in pycs} == {1}


@pytest.mark.slow
def test_the_runtime_imports_the_bytecode_not_the_source(package: Path, tmp_path: Path) -> None:
    task = tmp_path / "task"
    with zipfile.ZipFile(package / "deployment.zip") as archive:
        archive.extractall(task)
    # Were the source read, this line would fail the import.
    with (task / "chalicelib" / "statuses.py").open("a") as source:
        source.write("\nraise SystemExit('the source was compiled at import time')\n")
    probe = "import chalicelib.statuses as s; print(s.__cached__)"
    result = subprocess.run(
        [sys.executable, "-B", "-S", "-c", probe], cwd=task, env={"PATH": os.environ["PATH"]}, capture_output=True
    )
    assert result.returncode == 0, result.stderr


def _unpacked(package: Path, tmp_path: Path) -> Path:
    """The zip unpacked as Lambda unpacks it."""
    task = tmp_path / "task"
    with zipfile.ZipFile(package / "deployment.zip") as archive:
        archive.extractall(task)
    return task


def _packaged_verify(task: Path, database_url: str) -> dict[str, Any]:
    """The unpacked ``migrate`` handler's verify, with no site-packages and no project around it."""
    handler = "import json, app; print(json.dumps(app.migrate({'action': 'verify'}, None)))"
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-B", "-S", "-c", handler], cwd=task, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.mark.slow
def test_packaged_migrate_verifies_a_database(package: Path, migrated_db: str, tmp_path: Path) -> None:
    """Unzipped as Lambda unzips it, no site-packages, no project around it: the handler finds its SQL."""
    report = _packaged_verify(_unpacked(package, tmp_path), migrated_db)
    assert report["ok"] is True
    assert len(report["already_applied"]) == len(list(MIGRATIONS.glob("*.sql")))


@pytest.mark.slow
def test_the_zip_carries_the_expected_schema_its_gate_compares_with(
    package: Path, migrated_db: str, tmp_path: Path
) -> None:
    """Built at package time on the embedded PostgreSQL 18: a server of that major version replays nothing."""
    from chalicelib.migrate import stored
    from chalicelib.migrate.files import load_migrations

    task = _unpacked(package, tmp_path)
    snapshot = json.loads((task / "migrations" / stored.SNAPSHOT_NAME).read_text())
    (entry,) = snapshot["entries"]
    assert entry["key"] == stored.key(load_migrations(MIGRATIONS), 180000)
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(f"DELETE FROM {stored.STORE_TABLE}")  # nothing stored yet: a first release with these files
        major = conn.info.server_version // 10000
    report = _packaged_verify(task, migrated_db)
    assert report["ok"] is True, report["drift"]
    said = "the expected schema read from the package's snapshot" if major == 18 else "the expected schema replayed"
    assert any(line.startswith(said) for line in report["checked"]), report["checked"]


@pytest.mark.slow
def test_cfn_lint_accepts_the_template(package: Path) -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(package / "sam.json")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.slow
def test_the_queue_has_a_dead_letter_queue_and_outlasts_the_worker(template: dict[str, Any]) -> None:
    found = resources(template)
    queue = found["CustomerQueue"]["Properties"]
    assert found["CustomerDeadLetterQueue"]["Type"] == "AWS::SQS::Queue"
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["CustomerDeadLetterQueue", "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 5
    assert queue["VisibilityTimeout"] >= 6 * found["CustomerWorker"]["Properties"]["Timeout"]


@pytest.mark.slow
def test_the_worker_reads_that_queue_with_partial_batch_responses(template: dict[str, Any]) -> None:
    found = resources(template)
    worker = found["CustomerWorker"]
    [source] = worker["Properties"]["Events"].values()
    assert source["Type"] == "SQS"
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # chalice names the queue by name in an ARN; it must be the queue the template creates.
    assert source["Properties"]["Queue"]["Fn::Sub"].endswith(":" + found["CustomerQueue"]["Properties"]["QueueName"])
    assert {"CustomerQueue", "CustomerWorkerQueuePolicy"} <= set(worker["DependsOn"])
    [statement] = found["CustomerWorkerQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert set(statement["Action"]) >= {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
    assert statement["Resource"] == {"Fn::GetAtt": ["CustomerQueue", "Arn"]}
    assert found["CustomerWorkerQueuePolicy"]["Properties"]["Roles"] == [{"Ref": "CustomerWorkerRole"}]


@pytest.mark.slow
def test_the_api_may_only_send_to_the_queue_and_knows_its_url(template: dict[str, Any]) -> None:
    found = resources(template)
    [statement] = found["ApiHandlerQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (statement["Action"], statement["Resource"]) == ("sqs:SendMessage", {"Fn::GetAtt": ["CustomerQueue", "Arn"]})
    assert found["ApiHandlerQueuePolicy"]["Properties"]["Roles"] == [{"Ref": "ApiHandlerRole"}]
    variables = found["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["CUSTOMER_QUEUE_URL"] == {"Ref": "CustomerQueue"}


@pytest.mark.slow
def test_the_sender_runs_every_minute(template: dict[str, Any]) -> None:
    [event] = resources(template)["SendNotifications"]["Properties"]["Events"].values()
    assert event == {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}}


@pytest.mark.slow
def test_functions_run_in_the_vpc_on_the_runtime_the_bytecode_is_for(template: dict[str, Any]) -> None:
    found = resources(template)
    for name in FUNCTIONS:
        properties = found[name]["Properties"]
        assert properties["Runtime"] == RUNTIME, name
        assert properties["VpcConfig"]["SubnetIds"], name
        assert properties["VpcConfig"]["SecurityGroupIds"], name
    assert found["Migrate"]["Properties"]["Timeout"] >= 300
    assert template["Outputs"]["MigrateFunctionName"] == {"Value": {"Ref": "Migrate"}}


@pytest.mark.slow
def test_the_api_is_throttled_with_buckets_of_their_own_for_staff(template: dict[str, Any]) -> None:
    """Finding 3: anonymous floods (even ones answered 401) must not use up the staff's bucket."""
    settings = {
        (s["ResourcePath"], s["HttpMethod"]): s for s in resources(template)["RestAPI"]["Properties"]["MethodSettings"]
    }
    public = settings[("/*", "*")]
    assert public["ThrottlingRateLimit"] > 0
    assert public["ThrottlingBurstLimit"] > 0
    staff = [
        ("/~1registrations", "GET"),
        ("/~1registrations~1{registration_id}", "GET"),
        ("/~1registrations~1{registration_id}~1{action}", "POST"),
        ("/~1packages", "POST"),
    ]
    for key in staff:
        assert settings[key]["ThrottlingRateLimit"] > public["ThrottlingRateLimit"], key
    for key in [("/~1registrations", "POST"), ("/~1registrations~1{registration_id}~1resend-code", "POST")]:
        assert settings[key]["ThrottlingRateLimit"] < public["ThrottlingRateLimit"], key
    # Every method named is a route of the app (a typo would throttle nothing).
    routes = {(p, m) for p, entry in app_routes().items() for m in entry}
    for path, method in settings:
        assert path == "/*" or (path[1:].replace("~1", "/"), method) in routes, path


@pytest.mark.slow
def test_a_waf_web_acl_guards_the_stage(template: dict[str, Any]) -> None:
    """Finding 1 at the edge: per-IP rate limits, tighter where a code is sent; AWS managed rules."""
    found = resources(template)
    association = found["ApiWebAclAssociation"]
    assert association["Type"] == "AWS::WAFv2::WebACLAssociation"
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": ["ApiWebAcl", "Arn"]}
    assert "/restapis/${RestAPI}/stages/${RestAPI.Stage}" in association["Properties"]["ResourceArn"]["Fn::Sub"]
    acl = found["ApiWebAcl"]
    assert acl["Type"] == "AWS::WAFv2::WebACL"
    assert acl["Properties"]["Scope"] == "REGIONAL"
    rules = {rule["Name"]: rule for rule in acl["Properties"]["Rules"]}
    managed = {
        r["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for r in rules.values()
        if "ManagedRuleGroupStatement" in r["Statement"]
    }
    assert managed == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"}
    otp, every = rules["otp-routes-per-ip"], rules["all-routes-per-ip"]
    for rule in (otp, every):
        assert rule["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
        assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    assert otp["Statement"]["RateBasedStatement"]["Limit"] < every["Statement"]["RateBasedStatement"]["Limit"]
    scope = json.dumps(otp["Statement"]["RateBasedStatement"]["ScopeDownStatement"])
    for needed in ('"/registrations"', '"/resend-code"', '"POST"'):
        assert needed in scope
    # Rate limits come before the managed groups: a flood is cut before it is inspected.
    assert max(otp["Priority"], every["Priority"]) < min(
        r["Priority"] for r in rules.values() if r["Name"].startswith("AWS")
    )
    body = json.loads(acl["Properties"]["CustomResponseBodies"]["too_many_requests"]["Content"])
    assert body["error"]["code"] == "too_many_requests"


@pytest.mark.slow
def test_an_alarm_fires_well_before_the_daily_otp_budget_is_spent(template: dict[str, Any]) -> None:
    alarm = resources(template)["OtpBudgetAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("RegistrationBackend", "OtpBudgetUsedPercent")
    assert alarm["Threshold"] <= 50
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert "AlarmTopic" in resources(template)


@pytest.mark.slow
def test_no_secret_in_plain_text_and_only_the_functions_that_need_it_name_the_app_secret(
    template: dict[str, Any],
) -> None:
    found = resources(template)
    for name in FUNCTIONS:
        variables = found[name]["Properties"]["Environment"]["Variables"]
        assert not {"WHATSAPP_TOKEN", "OTP_HASH_KEY", "AUTH_JWT_SECRET", "DATABASE_URL"} & set(variables), name
        assert variables["DB_SECRET_ARN"]["Fn::ImportValue"].endswith("SecretArn"), name
        # Each function names only the app secrets it uses: the OTP key hashes codes (the API), the
        # WhatsApp token sends messages (the API, the worker, the sender).
        assert ("OTP_SECRET_ARN" in variables) == (name == "APIHandler"), name
        senders = ("APIHandler", "CustomerWorker", "SendNotifications")
        assert ("WHATSAPP_SECRET_ARN" in variables) == (name in senders), name
        assert "APP_SECRET_ARN" not in variables, name


@pytest.mark.slow
def test_roles_grant_nothing_broad(template: dict[str, Any]) -> None:
    """No wildcard action; a wildcard resource only for the VPC network interface calls Lambda needs."""
    found = resources(template)
    roles = [r for r in found.values() if r["Type"] == "AWS::IAM::Role"]
    assert len(roles) == len(FUNCTIONS), "one role per function"
    for role in roles:
        for policy in role["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert all("*" not in action for action in actions), statement
                if statement["Resource"] == "*":
                    assert all(action.startswith("ec2:") for action in actions), statement


def _references(value: Any) -> set[str]:
    """Logical ids a resource's body points at: Ref, Fn::GetAtt, and ${Name} in Fn::Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else inner.split(".")[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
            found |= _references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _references(inner)
    return found


def _waits_for(found: dict[str, Any], name: str) -> set[str]:
    """Every resource ``name`` waits for, directly or through others (DependsOn and references)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        resource = found[todo.pop()]
        depends = resource.get("DependsOn", [])
        direct = ({depends} if isinstance(depends, str) else set(depends)) | _references(resource)
        for other in direct & set(found) - seen:
            seen.add(other)
            todo.append(other)
    return seen


@pytest.mark.slow
def test_every_function_but_migrate_waits_for_the_schema_gate(template: dict[str, Any]) -> None:
    found = resources(template)
    functions = [n for n, r in found.items() if r["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function")]
    assert sorted(functions) == sorted(FUNCTIONS)
    for name in functions:
        assert ("SchemaMigration" in _waits_for(found, name)) == (name != "Migrate"), name
    # Whatever invokes a function (the API, the queue's mapping, the schedules) waits too.
    assert "SchemaMigration" in _waits_for(found, "RestAPI")


@pytest.mark.slow
def test_the_schema_gate_is_served_by_migrate_and_changes_with_every_release(
    template: dict[str, Any], package: Path
) -> None:
    gate = resources(template)["SchemaMigration"]
    assert gate["Type"].startswith("Custom::")
    properties = gate["Properties"]
    assert properties["ServiceToken"] == {"Fn::GetAtt": ["Migrate", "Arn"]}
    assert properties["Release"] == hashlib.sha256((package / "deployment.zip").read_bytes()).hexdigest()
    assert json.loads(properties["Contract"]) == contract_data()
    assert properties["ServiceTimeout"] > resources(template)["Migrate"]["Properties"]["Timeout"]
    assert "SchemaMigration" not in _waits_for(resources(template), "Migrate")
    # CloudFormation invokes it asynchronously: no retry may run the gate a second time.
    assert resources(template)["Migrate"]["Properties"]["EventInvokeConfig"] == {"MaximumRetryAttempts": 0}
    unknown = resources(template)["SchemaDriftUnknownAlarm"]["Properties"]
    assert (unknown["MetricName"], unknown["AlarmActions"]) == ("SchemaDriftUnknown", [{"Ref": "AlarmTopic"}])


@pytest.mark.slow
def test_drift_and_dead_letters_alarm_on_one_topic(template: dict[str, Any], package: Path) -> None:
    found = resources(template)
    stage = package.name.removeprefix("package-")
    assert found["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    drift = found["SchemaDriftAlarm"]["Properties"]
    assert (drift["Namespace"], drift["MetricName"]) == ("RegistrationBackend", "SchemaDrift")
    assert drift["Dimensions"] == [{"Name": "Stage", "Value": stage}]
    assert (drift["ComparisonOperator"], drift["Threshold"]) == ("GreaterThanThreshold", 0)
    for alarm in ("SchemaDriftAlarm", "CustomerDeadLetterAlarm"):
        assert found[alarm]["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], alarm
    subscription = found["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""


@pytest.mark.slow
def test_the_drift_watch_runs_hourly(template: dict[str, Any]) -> None:
    [event] = resources(template)["SchemaDriftWatch"]["Properties"]["Events"].values()
    assert event == {"Type": "Schedule", "Properties": {"Schedule": "rate(1 hour)"}}


@pytest.mark.slow
def test_the_docs_page_is_served_from_the_unpacked_zip(package: Path, tmp_path: Path) -> None:
    """Swagger UI's files travel in the zip (``vendor/swagger-ui``): ``GET /docs`` needs no CDN in AWS either."""
    task = tmp_path / "task"
    with zipfile.ZipFile(package / "deployment.zip") as archive:
        archive.extractall(task)
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"):
        assert (task / "swagger-ui" / name).read_bytes() == (ROOT / "vendor" / "swagger-ui" / name).read_bytes()
    probe = "from chalicelib.web import docs; print(docs.page()); print(len(docs.asset('swagger-ui.css').body))"
    result = subprocess.run(
        [sys.executable, "-B", "-S", "-c", probe], cwd=task, env={"PATH": os.environ["PATH"]}, capture_output=True
    )
    assert result.returncode == 0, result.stderr
    assert b"docs/swagger-ui-bundle.js?v=" in result.stdout


@pytest.mark.slow
def test_api_gateways_own_answers_are_in_the_error_envelope(template: dict[str, Any]) -> None:
    """An unknown path in AWS: 404 not_found, not 403 "Missing Authentication Token" (tests/integration/
    test_gateway_responses.py checks every gateway response against the table of codes)."""
    responses = resources(template)["RestAPI"]["Properties"]["GatewayResponses"]
    missing = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert missing["StatusCode"] == "404"
    assert json.loads(missing["ResponseTemplates"]["application/json"])["error"]["code"] == "not_found"
    assert {"THROTTLED", "UNAUTHORIZED", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)


@pytest.mark.slow
def test_the_api_writes_an_access_log_to_a_group_with_retention(template: dict[str, Any]) -> None:
    """Every request through API Gateway on record (docs/api.md, "Personal data"): no query string and
    no body, the route template rather than the path; the group keeps it for a bounded time."""
    found = resources(template)
    setting = found["RestAPI"]["Properties"]["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert 1 <= found["ApiAccessLogGroup"]["Properties"]["RetentionInDays"] <= 400
    line = json.loads(setting["Format"])
    assert {"requestId", "route", "status"} <= set(line)
    assert "$context.path" not in setting["Format"], "the route template, not a path with its query"
    assert "PurgePersonalData" in found, "the daily purge is packaged"
    assert "rate(1 day)" in json.dumps(found["PurgePersonalData"])


@pytest.mark.slow
def test_no_account_value_is_packaged_and_each_policy_is_the_generated_one(
    template: dict[str, Any], package: Path
) -> None:
    """Subnets, secrets, endpoints and the user pool are the foundation's exports; no id is written in."""
    stage = package.name.removeprefix("package-")
    text = (package / "sam.json").read_text()
    assert not re.search(r"\b\d{12}\b|subnet-[0-9a-f]|sg-[0-9a-f]|_DevPool|_ProdPool", text)
    assert foundation_refs.check_template(template) == []
    found = resources(template)
    for function in foundation_refs.FUNCTIONS.values():
        properties = found[function.logical_id]["Properties"]
        assert properties["FunctionName"] == f"registration-backend-{stage}-{function.logical_id}"
        assert properties["ReservedConcurrentExecutions"] == function.reserved_concurrency
        assert properties["VpcConfig"]["SubnetIds"] == {
            "Fn::Split": [",", {"Fn::ImportValue": f"registration-{stage}-PrivateSubnetIds"}]
        }
        [policy] = found[properties["Role"]["Fn::GetAtt"][0]]["Properties"]["Policies"]
        assert policy["PolicyDocument"] == foundation_refs.policy(stage, function)
    group = found["ApiAccessLogGroup"]["Properties"]
    assert group["KmsKeyId"] == {"Fn::ImportValue": f"registration-{stage}-LogKeyArn"}
    assert found["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == group["KmsKeyId"]


@pytest.mark.slow
def test_checkov_finds_nothing_unjustified_in_the_packaged_template(package: Path) -> None:
    """make package runs it too; here when .venv-checkov exists (make lint-infra or make package makes it)."""
    checkov = ROOT / ".venv-checkov" / "bin" / "checkov"
    if not checkov.exists():
        pytest.skip("no .venv-checkov: make lint-infra creates it (requirements-checkov.txt)")
    command = [str(checkov), "--framework", "cloudformation", "--quiet", "--compact", "--skip-download"]
    result = subprocess.run([*command, "-f", str(package / "sam.json")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout
    assert "Failed checks: 0" in result.stdout
