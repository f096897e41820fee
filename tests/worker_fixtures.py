"""Helpers for the customer worker's tests that must be importable on their own:
the body of a spawned delivery process, and a round-trip counter.
"""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq


def deliver_in_process(url: str, record: dict[str, Any], barrier: Any, results: Any) -> None:
    """One Lambda container's worth: its own connection, one delivery of ``record``."""
    from chalicelib import customers
    from chalicelib.runtime import Database

    database = Database(url=lambda: url)
    database.run(lambda conn: conn.execute("SELECT 1"))  # connected before the race starts
    barrier.wait()
    try:
        results.put(customers.create_customers(database, [record], notify=lambda ids: None))
    finally:
        database.reset()


class RoundTrips:
    count = 0


@contextmanager
def count_round_trips(conn: psycopg.Connection[Any]) -> Iterator[RoundTrips]:
    """Counts the server's ReadyForQuery messages: one per network round trip (libpq's trace)."""
    counted = RoundTrips()
    fd, path = tempfile.mkstemp(prefix="pgtrace-")
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
