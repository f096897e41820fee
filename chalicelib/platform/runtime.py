"""What one warm Lambda container builds once and keeps between invocations: the ``Runtime``.

``app.py`` holds one; tests build their own.  Everything on it is built at first
use (boto3, psycopg and PyJWT cost a cold start hundreds of milliseconds), and
passed to whatever needs it: nothing in chalicelib keeps state of its own.
"""

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from chalicelib.platform.database import Database, conninfo
from chalicelib.platform.secrets import Secrets, with_app_secret
from chalicelib.platform.settings import Settings

if TYPE_CHECKING:  # imported with the first request that needs it, not at cold start
    from chalicelib.staff import Staff

# A verified token, by (token, and the settings it was verified with): the caller and when it expires.
TokenCacheKey = tuple[str, str | None, str | None, str | None]
VERIFIED_TOKENS_MAX = 1024


class Runtime:
    """The settings, secrets, database connection, SQS client, JWKS clients and caches of one container.

    ``env`` is read at the first use of ``settings`` (``os.environ`` by default);
    ``settings`` given here are used as they are.  ``secrets_client`` and
    ``sqs_client`` build those clients (boto3's by default).
    """

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        settings: Settings | None = None,
        secrets_client: Callable[[], Any] | None = None,
        sqs_client: Callable[[], Any] | None = None,
    ) -> None:
        # None: os.environ as it is at first use (chalice's test client swaps the object for the stage's).
        self._env = env
        self._settings = settings
        self._sqs_client = sqs_client
        self._sqs: Any = None
        self._jwks_by_url: dict[str, Any] = {}
        self._done_once: set[str] = set()
        self.secrets = Secrets(secrets_client)
        self.database = Database(self.conninfo, lambda: self.settings, self.secrets.forget)
        # Verified tokens, remembered until they expire (``chalicelib.web.auth``).
        self.verified_tokens: dict[TokenCacheKey, tuple[Staff, float]] = {}

    @property
    def settings(self) -> Settings:
        """The environment's settings, with what the app secret holds; read at first use.

        Raises ``ServiceUnavailableError`` when the app secret cannot be read; nothing
        is kept then, so the next use tries again.
        """
        if self._settings is None:
            env = os.environ if self._env is None else self._env
            self._settings = with_app_secret(Settings.from_env(env), self.secrets)
        return self._settings

    def conninfo(self) -> str:
        """The database's connection string (``DATABASE_URL``, or the RDS secret's)."""
        return conninfo(self.settings, self.secrets)

    def sqs(self) -> Any:
        """The container's SQS client, created at first use."""
        if self._sqs is None:
            if self._sqs_client is not None:
                self._sqs = self._sqs_client()
            else:
                from chalicelib.platform import sqs

                self._sqs = sqs.make_client()
        return self._sqs

    def jwks_client(self, url: str) -> Any:
        """The PyJWT JWKS client for ``url``, created at first use; it caches the keys it fetched."""
        client = self._jwks_by_url.get(url)
        if client is None:
            import jwt

            client = self._jwks_by_url[url] = jwt.PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=5)
        return client

    def first_time(self, what: str) -> bool:
        """True the first time it is asked about ``what`` in this container (e.g. to warn once), then False."""
        if what in self._done_once:
            return False
        self._done_once.add(what)
        return True
