"""The pipeline's workflow: actionlint and zizmor pass, and it is the pipeline docs/deploy.md describes.

check -> package -> deploy-dev -> deploy-prod; OIDC only where AWS is called; each deploy job behind its
GitHub environment, never two at once for a stage, running scripts/deploy and then its verify.
"""

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from cfnlint.decode import decode  # type: ignore[import-untyped]  # cfn-lint ships no type hints

from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "deploy.yml"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the key `on` as True.
    loaded["on"] = loaded.pop(True, loaded.get("on"))
    return loaded


@pytest.mark.parametrize(
    "command",
    [["actionlint", str(WORKFLOW)], ["zizmor", "--offline", "--persona", "pedantic", str(WORKFLOW.parent)]],
    ids=["actionlint", "zizmor"],
)
def test_the_linters_find_nothing(command: list[str]) -> None:
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_runs_on_push_to_main_with_no_permission_by_default(workflow: dict[str, Any]) -> None:
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    assert workflow["permissions"] == {}


def test_the_jobs_follow_one_another_check_first_prod_last(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    assert list(jobs) == ["check", "package", "deploy-dev", "deploy-prod"]
    assert "needs" not in jobs["check"]
    assert [jobs[name]["needs"] for name in ("package", "deploy-dev", "deploy-prod")] == [
        "check",
        "package",
        "deploy-dev",
    ]
    assert [step["run"] for step in jobs["check"]["steps"] if "run" in step] == ["make check"]
    [postgres, bundle, build] = [step["run"] for step in jobs["package"]["steps"] if "run" in step]
    # The package's expected schema is built on the RDS instance's major version.
    foundation, errors = decode(str(ROOT / "infra" / "foundation.yaml"))
    assert not errors, errors
    assert foundation is not None
    assert f"grep -q '^{foundation['Mappings']['Engine']['postgres']['Version']}'" in postgres
    assert jobs["package"]["env"]["EXPECTED_SCHEMA_DATABASE_URL"].startswith("postgresql://")
    assert "scripts/rds_ca_bundle.py" in bundle  # the RDS CA bundle in the package, fetched fresh
    assert "make package STAGE=dev" in build
    assert "make package STAGE=prod" in build


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_a_deploy_job_is_its_environments_with_oidc_one_at_a_time_then_verifies(
    workflow: dict[str, Any], stage: str
) -> None:
    job = workflow["jobs"][f"deploy-{stage}"]
    assert job["environment"] == stage
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["concurrency"] == {"group": f"deploy-{stage}", "cancel-in-progress": False}
    [credentials] = [s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs[-2:] == [
        f"scripts/deploy --stage {stage} --prebuilt --no-verify",
        f"scripts/deploy --stage {stage} --verify-only",
    ]
    assert job["env"]["DEPLOY_OUT"] == f"build/{stage}"


def test_only_the_deploy_jobs_may_ask_for_an_oidc_token(workflow: dict[str, Any]) -> None:
    for name, job in workflow["jobs"].items():
        assert ("id-token" in job["permissions"]) == name.startswith("deploy-"), name


def test_every_action_is_pinned_by_commit_with_its_version() -> None:
    uses = re.findall(r"uses: (\S+)@(\S+)(.*)", WORKFLOW.read_text())
    assert len(uses) >= 10
    for action, ref, comment in uses:
        assert re.fullmatch(r"[0-9a-f]{40}", ref), action
        assert re.fullmatch(r"\s+# v\d+\.\d+\.\d+", comment), action


def test_no_checkout_keeps_the_token(workflow: dict[str, Any]) -> None:
    checkouts = [
        step
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if step.get("uses", "").startswith("actions/checkout@")
    ]
    assert len(checkouts) == 4
    assert all(step["with"]["persist-credentials"] is False for step in checkouts)
