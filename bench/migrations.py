"""Migration timings: apply on an empty database (ours beside yoyo-migrations on the same files),
verify alone with its round trips, and the incident's constraint fix on a big table, two ways,
with a concurrent writer timing each of its statements.

Usage: python bench/migrations.py [--database-url URL] [--repeat N] [--rows N]

The incident's fix is run on ``customer_registrations`` holding ``--rows`` rows
(1,000,000 by default): first the seed's ``ALTER TABLE … DROP CONSTRAINT …, ADD
CONSTRAINT … CHECK (…)`` (it validates, a full scan under ACCESS EXCLUSIVE), then
ours: the same with ``NOT VALID``, and ``VALIDATE CONSTRAINT`` in a separate
transaction (a scan under SHARE UPDATE EXCLUSIVE, which lets writes through).
Meanwhile another connection inserts and updates rows in a loop, timing each
statement; the figure is the longest statement while each way ran.
"""

import argparse
import atexit
import importlib.util
import itertools
import logging
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from contextlib import redirect_stderr
from io import StringIO
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bench import _support
from chalicelib.migrate import execute, runner, stored
from chalicelib.migrate.files import load_migrations
from chalicelib.platform.settings import Settings
from chalicelib.schema_contract import CONTRACT
from chalicelib.statuses import RegistrationStatus

# Nothing changed since the release was accepted: the expected schema is stored (issue 24).
VERIFY_TARGET_MS = 50
# On the live connection: the catalog (1), the stored expected schema (1), the registry's
# statements PREPAREd (1); no scratch database.
VERIFY_ROUND_TRIPS = 3
BLOCK_TARGET_MS = 100
MIGRATIONS = _support.ROOT / "migrations"

_CHECK = "CHECK (status IN ({}))".format(", ".join(f"'{s.value}'" for s in RegistrationStatus))
SEED_FIX = [f"ALTER TABLE customer_registrations DROP CONSTRAINT valid_status, ADD CONSTRAINT valid_status {_CHECK}"]
OUR_FIX = [
    f"ALTER TABLE customer_registrations DROP CONSTRAINT valid_status, ADD CONSTRAINT valid_status {_CHECK} NOT VALID",
    "ALTER TABLE customer_registrations VALIDATE CONSTRAINT valid_status",
]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--writer-warmup", type=float, default=0.3, help="seconds the writer runs before and after")
    args = parser.parse_args(argv)
    server = _support.server(args.database_url)
    files = load_migrations(MIGRATIONS)

    apply_runs = max(1, args.repeat // 4)
    ours_s = [_apply_ours(server, files) for _ in range(apply_runs)]
    # yoyo-migrations is measured where it is installed (requirements-bench.txt).
    has_yoyo = importlib.util.find_spec("yoyo") is not None
    yoyo_s = [_apply_yoyo(server) for _ in range(apply_runs)] if has_yoyo else []
    verify = _verify(server, files, args.repeat)
    with _support.loaded_database(server, args.rows) as url:
        seed = _with_writer(url, SEED_FIX, args.writer_warmup)
        ours = _with_writer(url, OUR_FIX, args.writer_warmup)
        with psycopg.connect(url, autocommit=True) as conn:
            report = runner.verify(conn, files, CONTRACT)
    assert report.ok, report.drift

    apply_ms = _support.ms(statistics.median(ours_s))
    yoyo_ms = _support.ms(statistics.median(yoyo_s)) if yoyo_s else float("nan")
    return {
        "server_version": _support.server_version(server),
        "migration_files": len(files),
        "apply_empty_db": {"ours_median_ms": apply_ms, "yoyo_median_ms": yoyo_ms, "runs": apply_runs},
        "verify": verify,
        "constraint_fix": {"rows": args.rows, "seed_validating": seed, "ours_not_valid_then_validate": ours},
        "targets": [
            {
                "figure": "verify alone, nothing changed (history, contract, stored expected schema, statements)",
                "value": f"{verify['median_ms']:.1f} ms median (p95 {verify['p95_ms']:.1f}), "
                f"{verify['round_trips']} round trip(s)",
                "target": f"< {VERIFY_TARGET_MS} ms, {VERIFY_ROUND_TRIPS} round trips on the live connection "
                "(1 catalog query)",
                "met": verify["median_ms"] < VERIFY_TARGET_MS and verify["round_trips"] == [VERIFY_ROUND_TRIPS],
            },
            {
                "figure": f"constraint fix at {args.rows:,} rows: longest writer statement, ours",
                "value": f"{ours['writer_longest_ms']:.1f} ms (seed's: {seed['writer_longest_ms']:.1f} ms, "
                f"its ALTER {seed['statements_ms'][0]:.0f} ms)",
                "target": f"< {BLOCK_TARGET_MS} ms; the seed's blocks for the whole scan",
                "met": ours["writer_longest_ms"] < BLOCK_TARGET_MS
                and seed["writer_longest_ms"] >= 0.5 * seed["statements_ms"][0],
            },
            {
                "figure": "apply on an empty database, ours vs yoyo-migrations",
                "value": f"{apply_ms:.0f} ms vs {yoyo_ms:.0f} ms = {_support.ratio(apply_ms, yoyo_ms)} x",
                "target": "(comparison)",
                "met": None,
            },
        ],
    }


def _apply_ours(server: str, files: Any) -> float:
    with _support.database(server, migrated=False) as url, psycopg.connect(url, autocommit=True) as conn:
        with redirect_stderr(StringIO()):  # its progress lines
            seconds, report = _support.timed(runner.apply, conn, files, CONTRACT, Settings())
        assert report.ok, report.drift
    return seconds


def _apply_yoyo(server: str) -> float:
    from yoyo import get_backend, read_migrations

    logging.getLogger("yoyo").setLevel(logging.WARNING)  # a line per step otherwise
    with _support.database(server, migrated=False) as url:
        backend = get_backend(_yoyo_uri(url))
        started = time.perf_counter()
        migrations = read_migrations(str(_yoyo_folder()))
        with backend.lock():
            backend.apply_migrations(backend.to_apply(migrations))
        seconds = time.perf_counter() - started
        backend.connection.close()
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            assert (row.fetchone() or [0])[0] >= len(load_migrations(MIGRATIONS)) - 2
    return seconds


def _yoyo_folder() -> Path:
    """The files as yoyo reads them: a no-transaction file says so in yoyo's own directive."""
    folder = Path(tempfile.mkdtemp(prefix="bench-yoyo-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    # Our runner makes its history table and the stored expected schema's before any file (030 grants on them).
    (folder / "000_migrate_tables.sql").write_text(f"{execute.CREATE_HISTORY};\n{stored.CREATE_STORE};\n")
    for migration in load_migrations(MIGRATIONS):
        head = "" if migration.in_transaction else "-- transactional: false\n"
        (folder / migration.name).write_text(head + migration.sql)
    return folder


def _yoyo_uri(url: str) -> str:
    parts = conninfo_to_dict(url)
    user = urllib.parse.quote(str(parts.get("user", "")), safe="")
    password = urllib.parse.quote(str(parts.get("password", "")), safe="")
    query = urllib.parse.urlencode({str(k): str(parts[k]) for k in ("host", "port") if k in parts})
    return f"postgresql+psycopg://{user}:{password}@/{parts['dbname']}?{query}"


def _verify(server: str, files: Any, repeat: int) -> dict[str, Any]:
    samples: list[float] = []
    trips: set[int] = set()
    with _support.database(server) as url, psycopg.connect(url, autocommit=True) as conn:
        for _ in range(repeat):
            seconds, report = _support.timed(runner.verify, conn, files, CONTRACT)
            assert report.ok, report.drift
            samples.append(seconds)
        for _ in range(3):
            with _support.count_round_trips(conn) as counted:
                runner.verify(conn, files, CONTRACT)
            trips.add(counted.count)
    ordered = sorted(samples)
    return {
        "median_ms": _support.ms(statistics.median(ordered)),
        "p95_ms": _support.ms(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]),
        "round_trips": sorted(trips),
        "runs": repeat,
    }


def _with_writer(url: str, statements: list[str], warmup_s: float) -> dict[str, Any]:
    """Run ``statements`` (each its own transaction) while a writer loops; what the writer saw."""
    stop = threading.Event()
    timings: list[tuple[float, float]] = []  # (start, seconds)
    failures: list[BaseException] = []
    writer = threading.Thread(target=_write_until, args=(url, stop, timings, failures))
    writer.start()
    time.sleep(warmup_s)  # the writer's steady state first
    durations = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '30s'")
        window_start = time.perf_counter()
        for statement in statements:
            seconds, _ = _support.timed(conn.execute, statement.encode())
            durations.append(_support.ms(seconds))
        window_end = time.perf_counter()
    time.sleep(warmup_s)
    stop.set()
    writer.join()
    if failures:
        raise failures[0]
    during = [s for start, s in timings if start + s >= window_start and start <= window_end]
    before = [s for start, s in timings if start + s < window_start]
    return {
        "statements_ms": durations,
        "writer_longest_ms": _support.ms(max(during)) if during else 0.0,
        "writer_statements_during": len(during),
        "writer_median_before_ms": _support.ms(statistics.median(before)) if before else None,
    }


_writers = itertools.count(1)


def _write_until(
    url: str, stop: threading.Event, timings: list[tuple[float, float]], failures: list[BaseException]
) -> None:
    try:
        _write(url, stop, timings, next(_writers) * 10_000_000)
    except BaseException as error:
        failures.append(error)


def _write(url: str, stop: threading.Event, timings: list[tuple[float, float]], first_phone: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        package = _support.insert_package(conn)
        n = first_phone
        while not stop.is_set():
            n += 1
            started = time.perf_counter()
            row = conn.execute(
                "INSERT INTO customer_registrations (full_name, email, phone, address, city, package_id) "
                "VALUES ('Penulis', %s, %s, 'Jl. Sudirman 1', 'Jakarta', %s) RETURNING id",
                (f"writer{n}-{package[:8]}@example.co.id", f"+62813{n:09d}", package),
            ).fetchone()
            assert row is not None
            conn.execute("UPDATE customer_registrations SET updated_at = now() WHERE id = %s", (row[0],))
            timings.append((started, time.perf_counter() - started))
            time.sleep(0.002)


if __name__ == "__main__":
    _support.write_json(main())
