"""Every statement the code runs, PREPAREd against the live database: the ones that no longer fit.

PREPARE parses, resolves every name and types every parameter without running
anything; it runs inside a read-only transaction that is rolled back.  All of them
go in one round trip; only when one fails are they tried one by one (a
savepoint each), to name each that fails.
"""

import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chalicelib.migrate.report import Drift
from chalicelib.platform.statements import Statement

if TYPE_CHECKING:
    import psycopg

_PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]+)\))?(?P<format>[sbt])|%%")


def check_statements(
    conn: "psycopg.Connection[Any]", statements: Sequence[Statement]
) -> tuple[list[str], list[Drift], dict[str, Any]]:
    """(what was checked, drift, {"ms", "round_trips"})."""
    import psycopg

    started = time.perf_counter()
    # Prepared statements outlive a rollback: each is deallocated right after it parsed.
    prepares = [
        f"PREPARE registry_{n} AS {to_postgres(s.text)};\nDEALLOCATE registry_{n}" for n, s in enumerate(statements)
    ]
    round_trips = 1
    failed: list[tuple[Statement, Exception]] = []
    idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    try:
        if idle:
            conn.execute(("BEGIN READ ONLY;\n" + ";\n".join(prepares) + ";\nROLLBACK").encode())
        else:  # inside the caller's transaction: a savepoint, rolled back
            with conn.transaction(force_rollback=True):
                conn.execute(";\n".join(prepares).encode())
    except psycopg.Error:
        if idle:
            conn.execute("ROLLBACK")
        round_trips += 1
        failed = _one_by_one(conn, statements, prepares, idle)
        round_trips += 2 + 2 * len(statements)
    drift = [
        Drift(
            "statement_does_not_prepare",
            f"{s.module} fails on every call of {s.summary!r}: PostgreSQL says {_said(error)}",
            None,
        )
        for s, error in failed
    ]
    modules = len({s.module for s in statements})
    checked = [f"{len(statements)} registered statements of {modules} modules PREPAREd against the live schema"]
    return checked, drift, {"ms": round((time.perf_counter() - started) * 1000, 1), "round_trips": round_trips}


def _one_by_one(
    conn: "psycopg.Connection[Any]", statements: Sequence[Statement], prepares: list[str], idle: bool
) -> list[tuple[Statement, Exception]]:
    import psycopg

    failed: list[tuple[Statement, Exception]] = []
    with conn.transaction(force_rollback=True):
        if idle:
            conn.execute("SET TRANSACTION READ ONLY")
        for item, prepare in zip(statements, prepares, strict=True):
            try:
                with conn.transaction():
                    conn.execute(prepare.encode())
            except psycopg.Error as error:
                failed.append((item, error))
    return failed


def to_postgres(text: str) -> str:
    """psycopg's ``%s`` / ``%(name)s`` placeholders as PostgreSQL's ``$1``…, as psycopg sends them."""
    numbers: dict[str, int] = {}
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(0) == "%%":
            return "%"
        name = match.group("name")
        if name is None:
            count += 1
            return f"${count}"
        if name not in numbers:
            numbers[name] = len(numbers) + 1
        return f"${numbers[name]}"

    return _PLACEHOLDER.sub(replace, text)


def _said(error: Exception) -> str:
    sqlstate = getattr(error, "sqlstate", None) or ""
    diag = getattr(error, "diag", None)
    primary = (getattr(diag, "message_primary", None) or str(error)).strip()
    return f"[{sqlstate}] {primary}"
