"""Where the database is, how to connect to it, and the one connection a container keeps.

psycopg and boto3 are imported inside the functions that need them: a Lambda
pays for them at first use, not at cold start.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.platform.secrets import Secrets
from chalicelib.platform.settings import ConfigurationError, Settings

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")


def conninfo(settings: Settings, secrets: Secrets | None = None) -> str:
    """The connection string: ``DATABASE_URL``, or built from the RDS secret at ``DB_SECRET_ARN``.

    The secret is the JSON RDS writes (``username``, ``password``, and usually
    ``host``, ``port``, ``dbname``); ``DB_HOST``, ``DB_PORT`` and ``DB_NAME`` fill
    in or override what it lacks.  Raises ``ConfigurationError`` when neither is set,
    ``ServiceUnavailableError`` when the secret cannot be read.
    """
    if settings.database_url:
        return settings.database_url
    if not settings.db_secret_arn:
        raise ConfigurationError("set DATABASE_URL, or DB_SECRET_ARN for an RDS secret")
    secret = (secrets or Secrets()).read(settings.db_secret_arn)
    from psycopg.conninfo import make_conninfo

    return make_conninfo(
        host=settings.db_host or secret.get("host"),
        port=settings.db_port or secret.get("port") or 5432,
        dbname=settings.db_name or secret.get("dbname") or "postgres",
        user=secret["username"],
        password=secret["password"],
    )


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
