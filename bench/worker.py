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
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from bench import _support
from bench.request_cost import _quiet_logs
from chalicelib.customers.messages import CreateCustomer

TARGET_ROUND_TRIPS = 2

Records = list[dict[str, Any]]
Handler = Callable[[Records], dict[str, Any]]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--traced-records", type=int, default=50)
    args = parser.parse_args(argv)
    server = _support.server(args.database_url)

    results = {}
    for name, make_handler in (("one_statement_worker", _worker_handler), ("separate_statements", _naive_handler)):
        with _support.database(server) as url, _quiet_logs():
            handler, conn = make_handler(url)
            ids = _support.seed_registrations(url, args.records, "approved")
            started = time.perf_counter()
            for batch in _batches(ids, args.batch):
                assert handler(batch) == {"batchItemFailures": []}
            elapsed = time.perf_counter() - started
            assert _customers(url) == args.records
            traced = _support.seed_registrations(url, args.traced_records, "approved", start=args.records)
            with _support.count_round_trips(conn) as counted:
                for batch in _batches(traced, args.batch):
                    assert handler(batch) == {"batchItemFailures": []}
            results[name] = {
                "customers_per_s": round(args.records / elapsed, 1),
                "ms_per_record": round(elapsed * 1000 / args.records, 3),
                "round_trips_per_record": round(counted.count / args.traced_records, 2),
            }
            if name == "one_statement_worker":
                _support.use_database(url).runtime.database.reset()
            else:
                conn.close()

    ours, naive = results["one_statement_worker"], results["separate_statements"]
    return {
        "server_version": _support.server_version(server),
        "connection": "unix socket" if "host=/" in server or "%2F" in server else "tcp",
        "records": args.records,
        "batch": args.batch,
        **results,
        "x_separate_statements_throughput": _support.ratio(ours["customers_per_s"], naive["customers_per_s"]),
        "targets": [
            {
                "figure": "worker: round trips per record",
                "value": f"{ours['round_trips_per_record']} ({ours['customers_per_s']:.0f} customers/s, "
                f"{results['separate_statements']['round_trips_per_record']} for six statements)",
                "target": f"<= {TARGET_ROUND_TRIPS}",
                "met": ours["round_trips_per_record"] <= TARGET_ROUND_TRIPS,
            }
        ],
    }


def _worker_handler(url: str) -> tuple[Handler, psycopg.Connection[Any]]:
    """The app's ``customer_worker`` as Lambda calls it, on the app's one connection."""
    app = _support.use_database(url)
    function = app.app.handler_map["customer_worker"]
    conn = app.runtime.database.run(lambda conn: conn)
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
            message = CreateCustomer.parse(record["body"])
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


if __name__ == "__main__":
    _support.write_json(main())
