"""scripts/rds_ca_bundle.py: what it takes as the RDS CA bundle and what it refuses (offline: bundles made here)."""

import datetime
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support import tls

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rds_ca_bundle", ROOT / "scripts" / "rds_ca_bundle.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["rds_ca_bundle"] = module
    spec.loader.exec_module(module)
    return module


def test_a_bundle_of_rds_cas_is_taken(script: ModuleType, tmp_path: Path) -> None:
    pem = tls.authority("Amazon RDS ap-southeast-3 Root CA RSA2048 G1").pem + tls.authority("Other CA").pem
    [warning] = script.check(pem)  # the test's CAs last a day
    assert warning.startswith("its last certificate expires on")
    path = tmp_path / "rds-ca-bundle.pem"
    path.write_bytes(pem)
    assert script.main(["--check", "--out", str(path)]) == 0


@pytest.mark.parametrize(
    ("pem", "refusal"),
    [
        (b"<html>Access denied</html>", "not a PEM bundle"),
        (tls.authority("Someone's CA").pem, "no valid certificate in it is named for Amazon RDS"),
    ],
)
def test_what_is_not_an_rds_bundle_is_refused(script: ModuleType, pem: bytes, refusal: str) -> None:
    with pytest.raises(script.BundleError, match=refusal):
        script.check(pem)


def test_an_expired_bundle_is_refused(script: ModuleType) -> None:
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3)
    with pytest.raises(script.BundleError, match="none of its 1 certificates is valid"):
        script.check(tls.authority("Amazon RDS Root CA").pem, now=later)


def test_a_server_certificate_is_refused(script: ModuleType) -> None:
    cert, _ = tls.authority("Amazon RDS Root CA").issue("db.example")
    with pytest.raises(script.BundleError, match="is not a CA certificate"):
        script.check(cert)


def test_a_missing_file_fails_the_check(script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert script.main(["--check", "--out", str(tmp_path / "absent.pem")]) == 1
    assert "absent.pem" in capsys.readouterr().err
