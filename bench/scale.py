"""``GET /registrations`` at scale: page 1 beside page 1,000 with the keyset cursor, and with OFFSET.

Usage: python bench/scale.py [--database-url URL] [--rows N] [--page N] [--requests N]

``customer_registrations`` holds ``--rows`` rows (1,000,000 by default, every status
in turn, created over two years).  The handler is called in-process
(``app.app(event, context)``, warm) for the first page and for page ``--page``
(the cursor the API gave for the page before it); for contrast the same page is
read with ``OFFSET`` (the list statement without the keyset condition; bare SQL,
fewer runs).  Page 1 and the keyset page are interleaved and many, past the point where PostgreSQL may switch a prepared
statement to its generic plan.  The plans are printed as EXPLAIN shows them: for
the values of a request (custom plan) and for any values (``GENERIC_PLAN``,
PostgreSQL 16+), and each is checked to use the (created_at, id) index.
"""

import argparse
import re
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from bench import _support
from bench.request_cost import _quiet_logs

TARGET_RATIO = 1.5
PAGE_SIZE = 20
INDEX = "customer_registrations_created_idx"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    server = _support.server(args.database_url)
    page = min(args.page, args.rows // PAGE_SIZE)
    with _support.loaded_database(server, args.rows) as url, _quiet_logs():
        app = _support.use_database(url)
        cs = _support.staff_token("cs")
        cursor = _cursor_for(url, page)
        first = _event(cs, None)
        deep = _event(cs, cursor)
        samples: dict[str, list[float]] = {"page 1": [], f"page {page}, keyset": [], f"page {page}, OFFSET": []}
        offset_sql, offset_params = _offset_statement(page)
        with psycopg.connect(url, autocommit=True) as bare:
            for _ in range(args.requests):
                samples["page 1"].append(_support.timed(_call, app, first)[0])
                samples[f"page {page}, keyset"].append(_support.timed(_call, app, deep)[0])
            # Apart: a long OFFSET scan just before a short request would slow the short one.
            for _ in range(max(5, args.requests // 10)):
                offset = _support.timed(lambda: bare.execute(offset_sql, offset_params).fetchall())[0]
                samples[f"page {page}, OFFSET"].append(offset)
            plans = _plans(bare, cursor)
        app.runtime.database.reset()
    figures = {name: _support.summary(values) for name, values in samples.items()}
    keyset_ratio = _support.ratio(figures[f"page {page}, keyset"]["median_ms"], figures["page 1"]["median_ms"])
    offset_ratio = _support.ratio(figures[f"page {page}, OFFSET"]["median_ms"], figures["page 1"]["median_ms"])
    # The keyset page must be an index range (Index Cond), not the index read from the top with a Filter.
    custom = [plan for name, plan in plans.items() if name.startswith("custom")]
    uses_index = (
        all(INDEX in plan for plan in custom) and "Index Cond: (ROW(created_at, id) <" in plans["custom, keyset"]
    )
    return {
        "rows": args.rows,
        "page_size": PAGE_SIZE,
        **figures,
        "x_page_1_keyset": keyset_ratio,
        "x_page_1_offset": offset_ratio,
        "plans": plans,
        "targets": [
            {
                "figure": f"GET /registrations at {args.rows:,} rows: page {page} (keyset) vs page 1",
                "value": f"{figures[f'page {page}, keyset']['median_ms']:.2f} ms vs "
                f"{figures['page 1']['median_ms']:.2f} ms = {keyset_ratio} x (OFFSET: {offset_ratio} x)",
                "target": f"<= {TARGET_RATIO} x",
                "met": keyset_ratio <= TARGET_RATIO,
            },
            {
                "figure": f"list query at {args.rows:,} rows: page 1 and the keyset page are ranges of {INDEX}",
                "value": ("yes" if uses_index else "no")
                + (
                    "; the generic plan would filter instead, PostgreSQL keeps custom plans"
                    if "Filter" in plans.get("generic", "")
                    else ""
                ),
                "target": "yes",
                "met": uses_index,
            },
        ],
    }


def _call(app: Any, event: dict[str, Any]) -> None:
    response = app.app(event, _support.LambdaContext())
    assert response["statusCode"] == 200, response


def _event(token: dict[str, str], cursor: str | None) -> dict[str, Any]:
    query = {"cursor": cursor} if cursor else None
    return _support.api_event("GET", "/registrations", "/registrations", headers=token, query=query)


def _cursor_for(url: str, page: int) -> str:
    """The cursor the API gives with page ``page - 1``: the last row of that page."""
    from chalicelib.registrations.service import _encode_cursor

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT jsonb_build_object('created_at', created_at, 'id', id) FROM customer_registrations "
            "ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
            ((page - 1) * PAGE_SIZE - 1,),
        ).fetchone()
    assert row is not None
    return _encode_cursor(row[0])


def _list_sql() -> str:
    from chalicelib.registrations.repository import _LIST

    return str(_LIST)


def _offset_statement(page: int) -> tuple[str, dict[str, Any]]:
    """The list statement paged with OFFSET instead of the keyset condition."""
    sql = _list_sql().replace("LIMIT %(limit)s", "LIMIT %(limit)s OFFSET %(offset)s")
    params = dict.fromkeys(
        ("status", "city", "created_from", "created_to", "after_created_at", "after_id", "assigned_to")
    )
    return sql, params | {"limit": PAGE_SIZE + 1, "offset": (page - 1) * PAGE_SIZE}


def _plans(conn: psycopg.Connection[Any], cursor: str) -> dict[str, str]:
    from chalicelib.registrations.service import _decode_cursor

    after_created_at, after_id = _decode_cursor(cursor)
    params = dict.fromkeys(("status", "city", "created_from", "created_to", "assigned_to")) | {"limit": PAGE_SIZE + 1}
    plans = {
        "custom, page 1": _explain(conn, "EXPLAIN ", params | {"after_created_at": None, "after_id": None}),
        "custom, keyset": _explain(
            conn, "EXPLAIN ", params | {"after_created_at": after_created_at, "after_id": after_id}
        ),
    }
    if conn.info.server_version >= 160000:
        # $n placeholders, no values: the plan a prepared statement may switch to.
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        generic = re.sub(r"%\((\w+)\)s", number, _list_sql())
        rows = conn.execute(("EXPLAIN (GENERIC_PLAN) " + generic).encode()).fetchall()
        plans["generic"] = "\n".join(row[0] for row in rows)
    return plans


def _explain(conn: psycopg.Connection[Any], prefix: str, params: dict[str, Any]) -> str:
    rows = conn.execute(prefix + _list_sql(), params).fetchall()
    return "\n".join(row[0] for row in rows)


if __name__ == "__main__":
    _support.write_json(main())
