"""Where the database is, and how to connect to it.

psycopg and boto3 are imported inside the functions that need them: a Lambda
pays for them at first use, not at cold start.
"""

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.config import ConfigurationError, Settings
from chalicelib.errors import ServiceUnavailableError

if TYPE_CHECKING:
    import psycopg


def conninfo(settings: Settings, secrets_client: Callable[[], Any] | None = None) -> str:
    """The connection string: ``DATABASE_URL``, or built from the RDS secret at ``DB_SECRET_ARN``.

    The secret is the JSON RDS writes (``username``, ``password``, and usually
    ``host``, ``port``, ``dbname``); ``DB_HOST``, ``DB_PORT`` and ``DB_NAME`` fill
    in or override what it lacks.  Raises ``ConfigurationError`` when neither is set.
    """
    if settings.database_url:
        return settings.database_url
    if not settings.db_secret_arn:
        raise ConfigurationError("set DATABASE_URL, or DB_SECRET_ARN for an RDS secret")
    secret = _secret(settings.db_secret_arn, secrets_client or _default_secrets_client)
    from psycopg.conninfo import make_conninfo

    return make_conninfo(
        host=settings.db_host or secret.get("host"),
        port=settings.db_port or secret.get("port") or 5432,
        dbname=settings.db_name or secret.get("dbname") or "postgres",
        user=secret["username"],
        password=secret["password"],
    )


SECRET_TTL_S = 900.0
_secrets: dict[str, tuple[float, dict[str, Any]]] = {}


def _secret(arn: str, client: Callable[[], Any]) -> dict[str, Any]:
    # Cached per container: a warm Lambda that reconnects should not pay a Secrets
    # Manager call each time.  After a rotation the old password fails to connect,
    # and ``forget_secrets`` makes the next attempt read the new one.
    cached = _secrets.get(arn)
    if cached is not None and time.monotonic() - cached[0] < SECRET_TTL_S:
        return cached[1]
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        secret: dict[str, Any] = json.loads(client().get_secret_value(SecretId=arn)["SecretString"])
    except (BotoCoreError, ClientError) as error:
        # Both the database's secret and the app's (``read_secret``) come through here.
        raise ServiceUnavailableError("a secret cannot be read from Secrets Manager; try again") from error
    _secrets[arn] = (time.monotonic(), secret)
    return secret


def read_secret(arn: str, client: Callable[[], Any] | None = None) -> dict[str, Any]:
    """The JSON secret at ``arn``, cached per container (``SECRET_TTL_S``); raises ``ServiceUnavailableError``."""
    return _secret(arn, client or _default_secrets_client)


def forget_secrets() -> None:
    """Drop cached credentials, e.g. after a connection attempt failed."""
    _secrets.clear()


def connect(url: str, settings: Settings) -> "psycopg.Connection[Any]":
    """A new autocommit connection: every unit of work opens its own ``conn.transaction()``.

    Autocommit is deliberate: on a non-autocommit psycopg connection a statement
    opens a transaction that nothing commits, and DDL run that way silently
    vanishes when the connection closes (one of the incident's two causes).
    """
    import psycopg

    conn = psycopg.connect(
        url,
        autocommit=True,
        connect_timeout=settings.db_connect_timeout_s,
        application_name="registration-backend",
    )
    if not settings.db_prepare:
        conn.prepare_threshold = None
    return conn


def _default_secrets_client() -> Any:
    import boto3

    return boto3.client("secretsmanager")
