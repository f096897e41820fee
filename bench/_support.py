"""What every benchmark shares: a PostgreSQL server, databases on it, statistics,
round-trip counting, and Lambda-shaped events.

A script given ``--database-url`` uses that server (it must allow CREATE DATABASE);
otherwise the first call to ``server`` starts an embedded PostgreSQL in a temporary
folder, shared by every script in the process and removed at exit.
"""

import atexit
import io
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stderr, suppress
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[1]
JWT_SECRET = "bench-secret-not-for-production-0123456789"
OTP_KEY = "bench-otp-key-not-for-production"

_embedded: list[str] = []


def server(database_url: str | None) -> str:
    """``database_url``, or the URL of an embedded PostgreSQL started once per process."""
    if database_url:
        return database_url
    if not _embedded:
        from devstack import embedded

        workdir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        # Registered first, so it runs after the server's own exit hook has stopped it.
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
        _embedded.append(str(embedded.start(workdir / "data", cleanup_mode="delete").get_uri()))
    return _embedded[0]


def create_db(server_url: str, migrated: bool = False) -> str:
    """A new database on the server (every migration applied when ``migrated``); its URL."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    url = make_conninfo(server_url, dbname=name)
    if migrated:
        from chalicelib import migrate

        with redirect_stderr(io.StringIO()):  # its progress lines
            report = migrate.run("apply", url)
        assert report["ok"], report
    return url


def drop_db(server_url: str, url: str) -> None:
    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@contextmanager
def database(server_url: str, migrated: bool = True) -> Iterator[str]:
    """A database for the block, dropped after it."""
    url = create_db(server_url, migrated)
    try:
        yield url
    finally:
        drop_db(server_url, url)


_loaded: dict[tuple[str, int], str] = {}


@contextmanager
def loaded_database(server_url: str, rows: int) -> Iterator[str]:
    """A migrated database whose ``customer_registrations`` holds ``rows`` rows (every status in
    turn, created over two years), vacuumed and analyzed.  The first call per server and size
    loads a template; later ones copy it (a file copy, faster than loading again)."""
    key = (server_url, rows)
    if key not in _loaded:
        url = create_db(server_url, migrated=True)
        seed_registrations(url, rows, STATUS_MIX, spread_days=730, returning=False)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE customer_registrations")
        _loaded[key] = str(conninfo_to_dict(url)["dbname"])
        atexit.register(forget_loaded)
    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_loaded[key]}" STRATEGY FILE_COPY'.encode())
    url = make_conninfo(server_url, dbname=name)
    try:
        yield url
    finally:
        drop_db(server_url, url)


def forget_loaded() -> None:
    """Drop the loaded templates (at exit, or when a caller's server is about to stop)."""
    while _loaded:
        (server_url, _), name = _loaded.popitem()
        with suppress(psycopg.OperationalError):  # the server may have stopped already
            drop_db(server_url, make_conninfo(server_url, dbname=name))


def server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


OTP_LIMIT = 10_000_000


def use_database(url: str, **extra_env: str | None) -> Any:
    """Point the app module at ``url`` (with the bench's secrets) and return it, with a new container's runtime."""
    os.environ.update({"DATABASE_URL": url, "AUTH_JWT_SECRET": JWT_SECRET, "OTP_HASH_KEY": OTP_KEY})
    # The benchmarks register thousands from one address: the OTP budgets must not refuse them.
    os.environ.update({"OTP_SENDS_PER_CLIENT_PER_HOUR": str(OTP_LIMIT), "OTP_SENDS_PER_DAY": str(OTP_LIMIT)})
    for name, value in extra_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    import app
    from chalicelib.platform.runtime import Runtime

    app.runtime.database.reset()
    app.runtime = Runtime()
    return app


# Statistics ------------------------------------------------------------------------------


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def summary(samples_s: Sequence[float]) -> dict[str, Any]:
    """Median and p99 in milliseconds (p99 is the maximum below 100 samples' resolution)."""
    ordered = sorted(samples_s)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"median_ms": ms(statistics.median(ordered)), "p99_ms": ms(p99), "n": len(ordered)}


def ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else float("inf")


def timed(function: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


# Round trips -----------------------------------------------------------------------------


class RoundTrips:
    count = 0


@contextmanager
def count_round_trips(conn: psycopg.Connection[Any]) -> Iterator[RoundTrips]:
    """Counts the server's ReadyForQuery messages: one per network round trip (libpq's trace)."""
    counted = RoundTrips()
    fd, path = tempfile.mkstemp(prefix="bench-trace-")
    try:
        conn.pgconn.trace(fd)
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            yield counted
        finally:
            conn.pgconn.untrace()
        with open(path) as trace:
            counted.count = sum(1 for line in trace if "\tReadyForQuery" in line)
    finally:
        os.close(fd)
        os.unlink(path)


# Lambda-shaped events ---------------------------------------------------------------------


class LambdaContext:
    """Enough of Lambda's context object for Chalice and our logs."""

    function_name = "registration-backend-dev"
    function_version = "$LATEST"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:ap-southeast-3:123456789012:function:registration-backend-dev"
    log_group_name = "/aws/lambda/registration-backend-dev"
    log_stream_name = "bench"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def api_event(
    method: str,
    resource: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST (proxy integration) event, as Lambda hands it to the API function."""
    all_headers = {"Host": "api.example.com", "Accept": "application/json", **(headers or {})}
    if body is not None:
        all_headers.setdefault("Content-Type", "application/json")
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/api{path}",
            "stage": "api",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": None if body is None else (body if isinstance(body, str) else json.dumps(body)),
        "isBase64Encoded": False,
    }


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": uuid.uuid4().hex,
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:ap-southeast-3:123456789012:create-customer",
                "awsRegion": "ap-southeast-3",
            }
            for body in bodies
        ]
    }


def staff_token(*roles: str) -> dict[str, str]:
    import jwt

    claims = {"sub": f"bench-{uuid.uuid4().hex[:6]}", "cognito:groups": list(roles), "exp": int(time.time()) + 3600}
    return {"Authorization": "Bearer " + jwt.encode(claims, JWT_SECRET, algorithm="HS256")}


def create_customer_body(registration_id: str) -> str:
    return json.dumps({"type": "create_customer", "registration_id": registration_id, "requested_by": "bench"})


# Data ---------------------------------------------------------------------------------------


def insert_package(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(
        "INSERT INTO packages (name, speed_mbps, monthly_price_idr) VALUES (%s, 30, 250000) RETURNING id",
        (f"Bench {uuid.uuid4().hex[:8]}",),
    ).fetchone()
    assert row is not None
    return str(row[0])


STATUS_MIX = "*"


def seed_registrations(
    url: str, count: int, status: str, start: int = 0, spread_days: int = 0, returning: bool = True
) -> list[str]:
    """``count`` registrations in ``status`` (``STATUS_MIX``: every status in turn) inserted with
    one SQL statement, phones numbered from ``start``, ``created_at`` spread over ``spread_days``
    back from now; their ids when ``returning``."""
    with psycopg.connect(url, autocommit=True) as conn:
        package = insert_package(conn)
        rows = conn.execute(
            """
            INSERT INTO customer_registrations
                   (full_name, email, phone, address, city, package_id, status, created_at)
            SELECT 'Pelanggan ' || n, 'bench' || n || '-' || %(tag)s || '@example.co.id',
                   '+62812' || lpad((n + %(start)s)::text, 9, '0'), 'Jl. Merdeka No. ' || n,
                   (ARRAY['Bandung', 'Jakarta', 'Surabaya', 'Medan'])[1 + n %% 4],
                   %(package)s,
                   CASE WHEN %(status)s = '*'
                        THEN (ARRAY['pending_verification', 'verified', 'survey_scheduled', 'survey_completed',
                                    'approved', 'customer_created', 'rejected', 'cancelled'])[1 + n %% 8]
                        ELSE %(status)s END,
                   now() - make_interval(secs => %(spread)s * 86400.0 * n / %(count)s)
              FROM generate_series(1, %(count)s) AS n
            """
            + (" RETURNING id" if returning else ""),
            {
                "tag": uuid.uuid4().hex[:8],
                "start": start,
                "package": package,
                "status": status,
                "count": count,
                "spread": spread_days,
            },
        )
        return [str(row[0]) for row in rows.fetchall()] if returning else []


def write_json(result: dict[str, Any]) -> None:
    print(json.dumps(result, indent=2, default=str))
