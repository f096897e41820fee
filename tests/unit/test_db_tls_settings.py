"""DB_SSLMODE and DB_SSLROOTCERT: their defaults by stage, and what is refused at settings load."""

import json
from pathlib import Path

import pytest

from chalicelib.platform import database
from chalicelib.platform.settings import ConfigurationError, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_local_stage_leaves_libpq_as_it_was() -> None:
    settings = Settings.from_env({})
    assert (settings.db_sslmode, settings.db_sslrootcert) == (None, None)
    assert database.tls_params(settings) == {}


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_aws_stages_verify_the_certificate_and_host_name(stage: str) -> None:
    settings = Settings.from_env({"STAGE": stage})
    assert database.tls_params(settings) == {"sslmode": "verify-full", "sslrootcert": "system"}


def test_the_direct_functions_name_the_rds_bundle() -> None:
    bundle = "/var/task/chalicelib/platform/rds-ca-bundle.pem"
    settings = Settings.from_env({"STAGE": "prod", "DB_SSLROOTCERT": bundle})
    assert database.tls_params(settings) == {"sslmode": "verify-full", "sslrootcert": bundle}


def test_an_unknown_mode_is_refused_at_load() -> None:
    with pytest.raises(ConfigurationError, match="DB_SSLMODE='verify_full' is not one of libpq's modes"):
        Settings.from_env({"DB_SSLMODE": "verify_full"})


def test_no_stage_of_the_deployed_config_weakens_it() -> None:
    """A weaker DB_SSLMODE is taken (and logged) where set by hand; no stage or function of ours sets one."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    for name, stage in config["stages"].items():
        scopes = [stage, *stage.get("lambda_functions", {}).values()]
        for scope in scopes:
            env = {**config.get("environment_variables", {}), **scope.get("environment_variables", {})}
            assert env.get("DB_SSLMODE", "verify-full") == "verify-full", name


def test_the_local_stage_may_ask_for_tls() -> None:
    assert Settings.from_env({"DB_SSLMODE": "require"}).db_sslmode == "require"


def test_system_points_openssl_at_a_store_when_none_is_named() -> None:
    """The psycopg wheel's OpenSSL looks in its build machine's folder; the system's store is named instead."""
    settings = Settings.from_env({"STAGE": "dev"})
    environ: dict[str, str] = {}
    database.check_root_cert(settings, environ)
    assert environ.get("SSL_CERT_FILE") or environ.get("SSL_CERT_DIR")
    named = {"SSL_CERT_FILE": "/somewhere/ca.pem"}
    database.check_root_cert(settings, named)
    assert named == {"SSL_CERT_FILE": "/somewhere/ca.pem"}


def test_a_weaker_mode_set_by_hand_drops_the_system_store() -> None:
    """libpq takes sslrootcert=system with verify-full only; the connection logs the weaker mode."""
    settings = Settings.from_env({"STAGE": "prod", "DB_SSLMODE": "require"})
    assert database.tls_params(settings) == {"sslmode": "require"}
