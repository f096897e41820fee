"""Where a warm request's fixed cost goes: cProfile over many handler calls, SQL included but named.

Usage: python bench/request_profile.py [--database-url URL] [--requests N] [--top N] [--sort tottime|cumtime]

The same three requests as ``bench/request_cost.py`` (POST /registrations without
WhatsApp, one schedule-survey transition, GET /registrations), each called N times
through ``app.app(event, context)`` on the container's one connection.  For each it
prints the functions with the most time, and a split of the time per request
into buckets by module (our code, chalice, pydantic, PyJWT, psycopg and the wait
for PostgreSQL, logging, json).  Not a timed target: a tool for finding what to cut.
"""

import argparse
import builtins
import cProfile
import functools
import io
import pstats
import sys
from collections import defaultdict
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _support, request_cost

# First match wins: a function's file decides its bucket.
BUCKETS = (
    ("psycopg + PostgreSQL", ("psycopg", "selectors", "socket")),
    ("chalice", ("chalice",)),
    ("pydantic", ("pydantic",)),
    ("jwt", ("jwt",)),
    ("logging", ("logging",)),
    ("json", ("json",)),
    ("chalicelib + app.py", ("chalicelib", "/app.py")),
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="tottime")
    args = parser.parse_args(argv)
    server = _support.server(args.database_url)
    n = args.requests
    with _support.database(server) as url, request_cost._quiet_logs():
        app = _support.use_database(url, WHATSAPP_API_URL=None, WHATSAPP_PHONE_NUMBER_ID=None, WHATSAPP_TOKEN=None)
        _support.seed_registrations(url, 2000, _support.STATUS_MIX, start=10_000_000)
        package = request_cost._package(url)
        verified = iter(_support.seed_registrations(url, n + 20, "verified", start=20_000_000))
        cs = _support.staff_token("cs")
        cases = {
            "POST /registrations": lambda: request_cost._create_event(package),
            "POST /registrations/{id}/schedule-survey": lambda: request_cost._schedule_event(next(verified), cs),
            "GET /registrations": lambda: request_cost._list_event(cs),
        }
        for name, make_event in cases.items():
            for _ in range(20):  # warm: connection, prepared statements, imports, the token cache
                request_cost._call(app, make_event())
            events = [make_event() for _ in range(n)]
            profile = cProfile.Profile()
            profile.enable()
            for event in events:
                request_cost._call(app, event)
            profile.disable()
            _report(name, profile, n, args.top, args.sort)
        app.runtime.database.reset()


def _report(name: str, profile: cProfile.Profile, n: int, top: int, sort: str) -> None:
    stats = pstats.Stats(profile)
    by_bucket: dict[str, float] = defaultdict(float)
    total = 0.0
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        total += tottime
        bucket = next((b for b, parts in BUCKETS if any(p in filename for p in parts)), "other")
        by_bucket[bucket] += tottime
    # request_cost._quiet_logs sends stdout (the metrics lines) to /dev/null: the report goes to the terminal.
    print = functools.partial(builtins.print, file=sys.__stdout__)
    print(f"\n=== {name}: {total / n * 1e6:.0f} us per request under the profiler ({n} requests)")
    for bucket, seconds in sorted(by_bucket.items(), key=lambda item: -item[1]):
        print(f"  {bucket:<24} {seconds / n * 1e6:7.1f} us  {seconds / total:6.1%}")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).strip_dirs().sort_stats(sort).print_stats(top)
    print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))


if __name__ == "__main__":
    main()
