"""The deployment package carries the migrations, and the packaged ``migrate`` finds them."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import MIGRATIONS, ROOT


@pytest.fixture(scope="module")
def deployment_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package") / "out"
    env = {**os.environ, "AWS_DEFAULT_REGION": "ap-southeast-3"}
    chalice = Path(sys.executable).parent / "chalice"
    subprocess.run([str(chalice), "package", "--stage", "dev", str(out)], cwd=ROOT, env=env, check=True, timeout=600)
    return out / "deployment.zip"


@pytest.mark.slow
def test_every_migration_is_in_the_zip_byte_for_byte(deployment_zip: Path) -> None:
    with zipfile.ZipFile(deployment_zip) as archive:
        packaged = {
            Path(name).name: archive.read(name) for name in archive.namelist() if name.startswith("migrations/")
        }
    on_disk = {path.name: path.read_bytes() for path in MIGRATIONS.glob("*.sql")}
    assert on_disk, "no migrations found on disk"
    assert packaged == on_disk


@pytest.mark.slow
def test_packaged_migrate_verifies_a_database(deployment_zip: Path, migrated_db: str, tmp_path: Path) -> None:
    """Unzipped as Lambda unzips it, no site-packages, no project around it: the handler finds its SQL."""
    task = tmp_path / "task"
    with zipfile.ZipFile(deployment_zip) as archive:
        archive.extractall(task)
    handler = "import json, app; print(json.dumps(app.migrate({'action': 'verify'}, None)))"
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": migrated_db}
    result = subprocess.run(
        [sys.executable, "-B", "-S", "-c", handler], cwd=task, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert len(report["already_applied"]) == len(list(MIGRATIONS.glob("*.sql")))
