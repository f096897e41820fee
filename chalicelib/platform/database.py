"""Where the database is, how to connect to it, and the one connection a container keeps.

psycopg and boto3 are imported inside the functions that need them: a Lambda
pays for them at first use, not at cold start.
"""

import logging
import os
import ssl
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.platform.secrets import Secrets
from chalicelib.platform.settings import AWS_SSLMODE, ConfigurationError, Settings

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")
log = logging.getLogger(__name__)


def conninfo(settings: Settings, secrets: Secrets | None = None) -> str:
    """The connection string: ``DATABASE_URL``, or built from the RDS secret at ``DB_SECRET_ARN``.

    The secret is the JSON RDS writes (``username``, ``password``, and usually
    ``host``, ``port``, ``dbname``); ``DB_HOST``, ``DB_PORT`` and ``DB_NAME`` fill
    in or override what it lacks.  Raises ``ConfigurationError`` when neither is set,
    ``ServiceUnavailableError`` when the secret cannot be read.
    """
    if settings.database_url:
        return with_tls(settings.database_url, settings)
    if not settings.db_secret_arn:
        raise ConfigurationError("set DATABASE_URL, or DB_SECRET_ARN for an RDS secret")
    secret = (secrets or Secrets()).read(settings.db_secret_arn)
    from psycopg.conninfo import make_conninfo

    url = make_conninfo(
        host=settings.db_host or secret.get("host"),
        port=settings.db_port or secret.get("port") or 5432,
        dbname=settings.db_name or secret.get("dbname") or "postgres",
        user=secret["username"],
        password=secret["password"],
    )
    return with_tls(url, settings)


def with_tls(url: str, settings: Settings) -> str:
    """``url`` with ``DB_SSLMODE`` and ``DB_SSLROOTCERT`` where set (they win over the URL's own).

    In the connection string, not only in ``connect``'s arguments: the second
    connections some code opens from it (the gate's session terminator, the scratch
    database of verify) verify the server the same way.
    """
    params = tls_params(settings)
    if not params:
        return url
    from psycopg.conninfo import make_conninfo

    return make_conninfo(url, **params)


def tls_params(settings: Settings) -> dict[str, str]:
    """libpq's ``sslmode`` and ``sslrootcert`` from the settings, those that are set."""
    params = {"sslmode": settings.db_sslmode, "sslrootcert": settings.db_sslrootcert}
    return {name: value for name, value in params.items() if value}


def check_root_cert(settings: Settings, environ: MutableMapping[str, str] | None = None) -> None:
    """Make sure the certificate can be verified before libpq tries; raises ``ConfigurationError`` when not.

    A named bundle that is missing or holds no certificate is refused here with its
    path (never a quiet fallback to an unverified link).  For ``system``, libpq asks
    OpenSSL for its default store; the psycopg wheel's own OpenSSL looks in a folder of
    its build machine that neither Lambda nor Debian has, so unless ``SSL_CERT_FILE`` or
    ``SSL_CERT_DIR`` is set, it is pointed at the store Python's ``ssl`` uses (the
    system's: Amazon Linux's bundle on Lambda).
    """
    env = os.environ if environ is None else environ
    root = settings.db_sslrootcert
    if settings.db_sslmode not in ("verify-ca", "verify-full") or not root:
        return
    if root == "system":
        if env.get("SSL_CERT_FILE") or env.get("SSL_CERT_DIR"):
            return
        paths = ssl.get_default_verify_paths()
        if paths.cafile and Path(paths.cafile).is_file():
            env["SSL_CERT_FILE"] = paths.cafile
        elif paths.capath and Path(paths.capath).is_dir():
            env["SSL_CERT_DIR"] = paths.capath
        else:
            raise ConfigurationError(
                "DB_SSLROOTCERT=system but this system has no trusted CA store (no SSL_CERT_FILE, nothing at "
                f"{paths.openssl_cafile}): cannot verify the database's certificate"
            )
        return
    try:
        text = Path(root).read_text(encoding="ascii", errors="replace")
    except OSError as error:
        raise ConfigurationError(
            f"DB_SSLROOTCERT={root}: the CA bundle cannot be read ({error.strerror}); the package ships it "
            "(docs/operations.md, TLS to the database): refusing to connect without verifying the server"
        ) from error
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigurationError(f"DB_SSLROOTCERT={root} holds no PEM certificate: refusing to connect")


def connect(url: str, settings: Settings) -> "psycopg.Connection[Any]":
    """A new autocommit connection: every unit of work opens its own ``conn.transaction()``.

    Autocommit is deliberate: on a non-autocommit psycopg connection a statement
    opens a transaction that nothing commits, and DDL run that way silently
    vanishes when the connection closes (one of the incident's two causes).
    TLS as the settings say (``with_tls``); raises ``ConfigurationError`` when the
    CA bundle they name cannot be used, ``psycopg.OperationalError`` when the
    server cannot be reached or its certificate is refused.
    """
    import psycopg

    if settings.stage != "local" and settings.db_sslmode != AWS_SSLMODE:
        log.warning(
            "DB_SSLMODE=%s in stage %s: the database's certificate is not verified", settings.db_sslmode, settings.stage
        )
    check_root_cert(settings)
    conn = psycopg.connect(
        with_tls(url, settings),
        autocommit=True,
        connect_timeout=settings.db_connect_timeout_s,
        application_name="registration-backend",
    )
    if not settings.db_prepare:
        conn.prepare_threshold = None
    return conn


class Database:
    """One connection per container, opened at first use and re-opened after a failure.

    ``url`` and ``settings`` are asked for at each (re)connection;
    ``on_connect_error`` runs when a connection cannot be opened (the runtime
    forgets its cached secrets there: the password may have been rotated).
    """

    def __init__(
        self,
        url: Callable[[], str],
        settings: Callable[[], Settings] = Settings,
        on_connect_error: Callable[[], None] = lambda: None,
    ) -> None:
        self._url = url
        self._settings = settings
        self._on_connect_error = on_connect_error
        self._conn: psycopg.Connection[Any] | None = None

    def run(self, work: Callable[["psycopg.Connection[Any]"], T]) -> T:
        """Call ``work`` with the connection; a connection-level failure drops it for the next call."""
        import psycopg

        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                self._conn = connect(self._url(), self._settings())
            except psycopg.OperationalError:
                self._on_connect_error()
                raise
        try:
            return work(self._conn)
        except psycopg.OperationalError:
            self.reset()
            raise

    def reset(self) -> None:
        """Close the connection, if any; the next ``run`` opens a new one."""
        if self._conn is not None:
            self._conn.close()
        self._conn = None
