"""What one warm Lambda container keeps between invocations: its database connection."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib import db
from chalicelib.config import settings

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")


class Database:
    """One connection per container, opened at first use and re-opened after a failure."""

    def __init__(self, url: Callable[[], str] | None = None) -> None:
        self._url = url or (lambda: db.conninfo(settings()))
        self._conn: psycopg.Connection[Any] | None = None

    def run(self, work: Callable[["psycopg.Connection[Any]"], T]) -> T:
        """Call ``work`` with the connection; a connection-level failure drops it for the next call."""
        import psycopg

        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                self._conn = db.connect(self._url(), settings())
            except psycopg.OperationalError:
                db.forget_secrets()  # perhaps rotated; the next attempt reads it again
                raise
        try:
            return work(self._conn)
        except psycopg.OperationalError:
            self.reset()
            raise

    def reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
