"""Staff search at scale: ``GET /registrations?q=`` and ``?city=`` on 1,000,000 registrations.

Usage: python bench/search.py [--database-url URL] [--rows N] [--requests N]

``customer_registrations`` gets ``--rows`` rows with names drawn from 40 first names and
40 family names (one name in 10,000 carries a rare family name), distinct e-mail addresses
and phones, four cities; loaded without migration 010's indexes, which are then built as
the migration builds them (its statements, CONCURRENTLY), timed.  Each kind of search is
called through the handler in-process (warm), ``--requests`` times: a phone typed with
dashes, an e-mail in capitals, a rare and a common part of a name, a common name's tenth
page (keyset cursor), a city in small letters.  Each statement's plan is printed as EXPLAIN
shows it for the request's values, and checked to use the kind's own index (for a name,
with the rare part: a part one name in 40 has is found sooner through the newest-first
index, which the planner rightly prefers).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from bench import _support
from bench.request_cost import _quiet_logs

PAGE_SIZE = 20
TARGET_P95_MS = 50.0
MIGRATION = "010_create_registration_search_indexes.sql"
INDEX_BY_KIND = {
    "phone": "customer_registrations_phone_created_idx",
    "email": "customer_registrations_email_lower_created_idx",
    "name": "customer_registrations_full_name_trgm_idx",
    None: "customer_registrations_city_lower_created_idx",  # no q: the city filter
}
FIRST_NAMES = [
    "Siti",
    "Budi",
    "Agus",
    "Dewi",
    "Rina",
    "Andi",
    "Putri",
    "Eko",
    "Sri",
    "Dian",
    "Ahmad",
    "Nur",
    "Wahyu",
    "Indah",
    "Rudi",
    "Ayu",
    "Hendra",
    "Fitri",
    "Joko",
    "Lestari",
    "Bambang",
    "Ratna",
    "Dedi",
    "Yuni",
    "Fajar",
    "Maya",
    "Rizky",
    "Wulan",
    "Arief",
    "Sari",
    "Hadi",
    "Intan",
    "Yusuf",
    "Nita",
    "Irfan",
    "Mega",
    "Bayu",
    "Ani",
    "Taufik",
    "Lia",
]
FAMILY_NAMES = [
    "Nurhaliza",
    "Wijaya",
    "Santoso",
    "Pratama",
    "Saputra",
    "Hidayat",
    "Kusuma",
    "Setiawan",
    "Gunawan",
    "Siregar",
    "Nasution",
    "Harahap",
    "Lubis",
    "Simanjuntak",
    "Sitompul",
    "Wibowo",
    "Susanto",
    "Kurniawan",
    "Halim",
    "Tanjung",
    "Purba",
    "Ginting",
    "Sembiring",
    "Tarigan",
    "Manurung",
    "Situmorang",
    "Pane",
    "Daulay",
    "Hasibuan",
    "Rangkuti",
    "Batubara",
    "Damanik",
    "Saragih",
    "Sinaga",
    "Panjaitan",
    "Hutapea",
    "Pardede",
    "Silalahi",
    "Napitupulu",
    "Siahaan",
]
RARE_FAMILY_NAME = "Tanoesoedibjo"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    server = _support.server(args.database_url)
    with _support.database(server) as url, _quiet_logs():
        build_s = _load(url, args.rows)
        app = _support.use_database(url)
        cs = _support.staff_token("cs")
        probe = _probe(url, args.rows)
        cases = _cases(app, cs, probe)
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.requests):
            for name, event in cases.items():
                samples[name].append(_support.timed(_call, app, event)[0])
        with psycopg.connect(url, autocommit=True) as conn:
            plans = {name: _explain(conn, probe, name) for name in cases}
        app.runtime.database.reset()
    figures = {name: _figures(values) for name, values in samples.items()}
    # A part that one name in 40 has is found sooner by walking the newest-first index and
    # filtering (21 matches within ~840 rows) than through the trigram index: the planner's
    # choice, reported with its plan, not held against the target.
    uses = {name: INDEX_BY_KIND[_kind(name)] in plan for name, plan in plans.items() if "common" not in name}
    slowest = max(f["p95_ms"] for f in figures.values())
    return {
        "rows": args.rows,
        "page_size": PAGE_SIZE,
        "index_build_s": build_s,
        **figures,
        "plans": plans,
        "targets": [
            {
                "figure": f"staff search at {args.rows:,} rows: each kind of q (and city) uses its own index "
                "(a rare name part for names)",
                "value": ", ".join(f"{name}: {'yes' if used else 'NO'}" for name, used in uses.items()),
                "target": "yes for every kind",
                "met": all(uses.values()),
            },
            {
                "figure": f"staff search at {args.rows:,} rows: the slowest kind's p95 (handler, warm)",
                "value": f"{slowest:.2f} ms ("
                + ", ".join(f"{n} {f['median_ms']:.2f}/{f['p95_ms']:.2f}" for n, f in figures.items())
                + " ms median/p95)",
                "target": f"<= {TARGET_P95_MS:.0f} ms",
                "met": slowest <= TARGET_P95_MS,
            },
        ],
    }


def _load(url: str, rows: int) -> float:
    """``rows`` registrations, migration 010's indexes built after the load; the seconds the build took."""
    from chalicelib.migrate.files import load_migrations, statements

    [migration] = [m for m in load_migrations() if m.name == MIGRATION]
    with psycopg.connect(url, autocommit=True) as conn:
        for index in INDEX_BY_KIND.values():
            conn.execute(f"DROP INDEX IF EXISTS {index}".encode())
        package = _support.insert_package(conn)
        conn.execute(
            """
            INSERT INTO customer_registrations
                   (full_name, email, phone, address, city, package_id, status, created_at)
            SELECT (%(first)s::text[])[1 + n %% 40] || ' ' ||
                   CASE WHEN n %% 10000 = 7 THEN %(rare)s ELSE (%(family)s::text[])[1 + (n / 40) %% 40] END,
                   'pelanggan' || n || '@example.co.id',
                   '+62812' || lpad(n::text, 8, '0'),
                   'Jl. Merdeka No. ' || n,
                   (ARRAY['Bandung', 'Jakarta', 'Surabaya', 'Medan'])[1 + n %% 4],
                   %(package)s,
                   (ARRAY['pending_verification', 'verified', 'survey_scheduled', 'survey_completed',
                          'approved', 'customer_created', 'rejected', 'cancelled'])[1 + n %% 8],
                   now() - make_interval(secs => 730 * 86400.0 * n / %(rows)s)
              FROM generate_series(1, %(rows)s) AS n
            """,
            {"first": FIRST_NAMES, "family": FAMILY_NAMES, "rare": RARE_FAMILY_NAME, "package": package, "rows": rows},
        )
        started = time.perf_counter()
        for statement in statements(migration.sql):
            conn.execute(statement.encode())
        build_s = round(time.perf_counter() - started, 1)
        conn.execute("VACUUM ANALYZE customer_registrations")
    return build_s


def _probe(url: str, rows: int) -> dict[str, Any]:
    """Values that exist: a phone and an e-mail from the middle of the table, and the cursor of page 9
    of the common name part."""
    from chalicelib.registrations.service import _encode_cursor

    n = rows // 2
    common = FAMILY_NAMES[0]
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT jsonb_build_object('created_at', created_at, 'id', id) FROM customer_registrations "
            "WHERE full_name ILIKE %s ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
            (f"%{common}%", 9 * PAGE_SIZE - 1),
        ).fetchone()
    digits = f"0812{n:08d}"
    return {
        "phone": f"{digits[:4]}-{digits[4:8]}-{digits[8:]}",
        "email": f"PELANGGAN{n}@EXAMPLE.CO.ID",
        "rare": RARE_FAMILY_NAME[:8].lower(),
        "common": common.lower(),
        "cursor": _encode_cursor(row[0]) if row else None,
        "city": "bandung",
    }


def _cases(app: Any, token: dict[str, str], probe: dict[str, Any]) -> dict[str, dict[str, Any]]:
    def event(query: dict[str, str]) -> dict[str, Any]:
        return _support.api_event("GET", "/registrations", "/registrations", headers=token, query=query)

    cases = {
        "phone (0812-…)": event({"q": probe["phone"]}),
        "email (capitals)": event({"q": probe["email"]}),
        "name, rare part": event({"q": probe["rare"]}),
        "name, common part": event({"q": probe["common"]}),
        "city (small letters)": event({"city": probe["city"]}),
    }
    if probe["cursor"]:
        cases["name, common part, page 10"] = event({"q": probe["common"], "cursor": probe["cursor"]})
    return cases


def _kind(case: str) -> str | None:
    return next((kind for kind in ("phone", "email", "name") if case.startswith(kind)), None)


def _call(app: Any, event: dict[str, Any]) -> None:
    response = app.app(event, _support.LambdaContext())
    assert response["statusCode"] == 200, response


def _explain(conn: psycopg.Connection[Any], probe: dict[str, Any], case: str) -> str:
    """EXPLAIN of the statement the handler runs for ``case``, with that request's values."""
    from chalicelib.registrations import search
    from chalicelib.registrations.repository import _LIST_BY_SEARCH
    from chalicelib.registrations.service import _decode_cursor

    kind = _kind(case)
    q = {"phone": probe["phone"], "email": probe["email"], "name": probe["rare"]}.get(kind or "")
    if case.startswith("name, common"):
        q = probe["common"]
    after = _decode_cursor(probe["cursor"]) if case.endswith("page 10") else (None, None)
    params = {
        "q": search.parse(q).value if q else None,
        "status": None,
        "city": probe["city"] if kind is None else None,
        "created_from": None,
        "created_to": None,
        "after_created_at": after[0],
        "after_id": after[1],
        "assigned_to": None,
        "limit": PAGE_SIZE + 1,
    }
    rows = conn.execute(("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + _LIST_BY_SEARCH[kind]).encode(), params)
    return "\n".join(row[0] for row in rows.fetchall())


def _figures(samples_s: list[float]) -> dict[str, Any]:
    ordered = sorted(samples_s)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": _support.ms(statistics.median(ordered)), "p95_ms": _support.ms(p95), "n": len(ordered)}


if __name__ == "__main__":
    _support.write_json(main())
