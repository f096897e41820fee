"""pgbouncer (Debian's package) in transaction pooling mode on a free loopback port, in front of a PostgreSQL.

What RDS Proxy is in AWS: many client connections, few server ones, a server
connection lent for one transaction at a time.  Clients authenticate with
``auth_type = trust`` (the user must still be listed in the auth file; the test servers
trust loopback themselves).  pgbouncer refuses to run as root: as root it runs as the
embedded server's system user, which may reach that server's socket folder (else ``nobody``).
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from devstack import embedded

SKIP_REASON = "pgbouncer is not installed (Debian: apt-get install pgbouncer; .ci/run installs it)"


def require() -> None:
    """Skip the test where pgbouncer is not installed, except in CI (``.ci/run`` installs it): fail there."""
    import pytest

    if binary() is None:
        if os.environ.get("CI"):
            pytest.fail(SKIP_REASON)
        pytest.skip(SKIP_REASON)


def binary() -> str | None:
    """The pgbouncer executable, if installed (Debian puts it in /usr/sbin)."""
    return shutil.which("pgbouncer") or next(
        (str(p) for p in (Path("/usr/sbin/pgbouncer"), Path("/usr/bin/pgbouncer")) if p.exists()), None
    )


@dataclass(frozen=True)
class Bouncer:
    port: int
    workdir: Path

    def url(self, server_url: str) -> str:
        """``server_url`` (any database, user and password on the backend) reached through the pool."""
        return make_conninfo(server_url, host="127.0.0.1", port=self.port)

    def log(self) -> str:
        return (self.workdir / "pgbouncer.log").read_text(errors="replace")


@contextmanager
def running(
    server_url: str, users: Sequence[tuple[str, str]], pool_size: int = 20, max_client_conn: int = 1000
) -> Iterator[Bouncer]:
    """pgbouncer in front of the server of ``server_url`` (TCP or Unix socket), every database of it.

    ``users``: (name, password) pairs the clients log in as.  At most ``pool_size`` server
    connections per database and user, ``pool_size`` per database in all.
    """
    executable = binary()
    if executable is None:
        raise FileNotFoundError(SKIP_REASON)
    backend = conninfo_to_dict(server_url)
    workdir = Path(tempfile.mkdtemp(prefix="regtest-pgbouncer-"))
    workdir.chmod(0o755)
    bouncer = Bouncer(_free_port(), workdir)
    (workdir / "users.txt").write_text("".join(f'"{name}" "{password}"\n' for name, password in users))
    (workdir / "pgbouncer.ini").write_text(
        _CONFIG.format(
            host=backend.get("host") or "127.0.0.1",
            backend_port=backend.get("port") or 5432,
            port=bouncer.port,
            workdir=workdir,
            pool_size=pool_size,
            max_client_conn=max_client_conn,
        )
    )
    user = _user()
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(workdir, entry.pw_uid, entry.pw_gid)
    process = subprocess.Popen(
        [executable, str(workdir / "pgbouncer.ini")],
        user=user,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(bouncer.port, process, workdir)
        yield bouncer
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


_CONFIG = """\
[databases]
* = host={host} port={backend_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/users.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_db_connections = {pool_size}
max_client_conn = {max_client_conn}
server_reset_query =
logfile = {workdir}/pgbouncer.log
pidfile = {workdir}/pgbouncer.pid
log_connections = 0
log_disconnections = 0
"""


def _user() -> str | None:
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        return pwd.getpwnam(embedded.USER).pw_name
    except KeyError:
        return "nobody"


def _wait_listening(port: int, process: "subprocess.Popen[bytes]", workdir: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (
                (workdir / "pgbouncer.log").read_text(errors="replace") if (workdir / "pgbouncer.log").exists() else ""
            )
            raise RuntimeError(f"pgbouncer exited with {process.returncode}: {log[-2000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("pgbouncer did not listen within 15 s")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
