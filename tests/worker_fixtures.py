"""The body of a spawned delivery process: importable on its own, as ``multiprocessing``'s spawn needs."""

from typing import Any


def deliver_in_process(url: str, record: dict[str, Any], barrier: Any, results: Any) -> None:
    """One Lambda container's worth: its own connection, one delivery of ``record``."""
    from chalicelib.customers import service as customers
    from chalicelib.platform.database import Database

    database = Database(url=lambda: url)
    database.run(lambda conn: conn.execute("SELECT 1"))  # connected before the race starts
    barrier.wait()
    try:
        results.put(customers.create_customers(database, [record], notify=lambda ids: None))
    finally:
        database.reset()
