"""A warm request's cost in CPU instructions (valgrind's callgrind): the same on a busy machine as on a quiet one.

Usage: python bench/request_instructions.py [--database-url URL] [--requests N] [--tree DIR] [KIND ...]

KIND is ``create``, ``schedule``, ``list`` (the handler, as ``bench/request_cost.py``
calls it; ``nolog-*``: with the request log line off), ``floor-*`` and ``powertools-*``
of those (the same events through the framework floors of ``bench/floors/request_floor.py``:
Chalice, Powertools), or ``bare-*`` (the same statement run directly with psycopg).  For
each, a child process under ``valgrind --tool=callgrind`` imports ``app`` from ``--tree``
(this checkout by default: point it at another checkout to compare), warms up with 30
calls of the handler and of each floor, makes N events and calls them; a second child
makes the same events without calling them.  The difference over N is one call's instructions,
client side only (the server's work is not in it).  Needs valgrind; takes minutes.
"""

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HERE = Path(__file__).resolve()
ROUTES = ("create", "schedule", "list")
# Our handler; the framework floors of bench/floors/request_floor.py (the same events); the bare statement.
KINDS = (
    *ROUTES,
    *(f"floor-{route}" for route in ROUTES),
    *(f"powertools-{route}" for route in ROUTES),
    *(f"bare-{route}" for route in ROUTES),
)
WARMUP = 30


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--tree", default=str(HERE.parents[1]), help="the checkout whose app.py is measured")
    parser.add_argument("kinds", nargs="*", default=list(KINDS))
    args = parser.parse_args(argv)
    from bench import _support

    server = _support.server(args.database_url)
    with _support.database(server) as url, tempfile.TemporaryDirectory() as folder:
        setup = Path(folder) / "setup.json"
        setup.write_text(json.dumps(_prepare(url, args.requests)))
        made: dict[str, int] = {}
        result = {kind: _per_call(args.tree, kind, args.requests, setup, made) for kind in args.kinds}
    print(json.dumps({"instructions_per_call": result, "requests": args.requests, "tree": args.tree}, indent=2))


def _prepare(url: str, n: int) -> dict[str, Any]:
    import psycopg

    from bench import _support

    _support.seed_registrations(url, 2000, _support.STATUS_MIX, start=10_000_000)
    with psycopg.connect(url, autocommit=True) as conn:
        package = _support.insert_package(conn)
    verified = _support.seed_registrations(url, n + WARMUP, "verified", start=20_000_000)
    return {"url": url, "package": package, "verified": verified, "token": _support.staff_token("cs")}


def _per_call(tree: str, kind: str, n: int, setup: Path, made_by_events: dict[str, int]) -> int:
    called = _instructions(tree, kind, n, setup, True)
    # The handler and its floors are given the same events: making them is counted once.
    events = kind.rsplit("-", 1)[-1] if not kind.startswith("bare-") else kind
    if events not in made_by_events:
        made_by_events[events] = _instructions(tree, kind, n, setup, False)
    return round((called - made_by_events[events]) / n)


def _instructions(tree: str, kind: str, n: int, setup: Path, call: bool) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, str(HERE)]
    command += ["--child", tree, kind, str(n), str(setup), "call" if call else "make-only"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(done.stderr[-2000:])
    return int(found.group(1))


def child(tree: str, kind: str, n: int, setup_file: str, mode: str) -> None:
    """Under valgrind: import ``app`` from ``tree``, warm up, then make (and call) ``n`` events."""
    import logging

    setup = json.loads(Path(setup_file).read_text())
    sys.path.insert(0, tree)
    os.chdir(tree)
    os.environ.update({"DATABASE_URL": setup["url"], "AUTH_JWT_SECRET": "bench-secret-not-for-production-0123456789"})
    os.environ.update({"OTP_HASH_KEY": "bench-otp-key-not-for-production"})
    os.environ.update({"OTP_SENDS_PER_CLIENT_PER_HOUR": "10000000", "OTP_SENDS_PER_DAY": "10000000"})
    for name in ("WHATSAPP_API_URL", "WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_TOKEN"):
        os.environ.pop(name, None)
    import app  # from ``tree``; the events, the floors and the bare SQL come from this checkout's bench

    sys.path.insert(0, str(HERE.parents[1]))
    from bench import request_cost
    from bench.floors import request_floor

    # Every child builds every floor and warms every one of them up on the route, so that all
    # children of a route are in the same state before counting, and one count of making the
    # events serves the handler and its floors.
    connection = lambda: app.runtime.database.run(lambda conn: conn)  # noqa: E731
    floors = {
        "floor": request_floor.chalice_app(connection),
        "powertools": request_floor.powertools_handler(connection),
    }

    with open(os.devnull, "w") as sink:
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(sink)
        # schedule-survey is allowed again from survey_scheduled: the ids may come round.
        verified = itertools.cycle(setup["verified"])
        make, run = _maker(kind, setup, verified, request_cost, app, floors)
        route = kind.rpartition("-")[2]
        warm = (
            [run]
            if kind.startswith("bare-")
            else [
                _maker(f"{framework}{route}", setup, verified, request_cost, app, floors)[1]
                for framework in ("", "floor-", "powertools-")
            ]
        )
        for _ in range(WARMUP):
            for each in warm:
                each(make())
        events = [make() for _ in range(n)]
        if mode == "call":
            for event in events:
                run(event)
    os._exit(0)


def _maker(
    kind: str, setup: dict[str, Any], verified: Any, request_cost: Any, app: Any, floors: dict[str, Any]
) -> tuple[Any, Any]:
    if kind.startswith("bare-"):
        import psycopg

        bare = psycopg.connect(setup["url"], autocommit=True)
        name = {"bare-create": "_INSERT_REGISTRATION", "bare-schedule": "_TRANSITION", "bare-list": "_LIST"}[kind]
        sql = request_cost._sql(name)
        params = {
            "bare-create": lambda: request_cost._create_params(setup["package"]),
            "bare-schedule": lambda: request_cost._schedule_params(next(verified)),
            "bare-list": request_cost._list_params,
        }[kind]
        return params, lambda p: bare.execute(sql, p).fetchall()
    framework, _, route = kind.rpartition("-")
    events = {
        "create": lambda: request_cost._create_event(setup["package"]),
        "schedule": lambda: request_cost._schedule_event(next(verified), setup["token"]),
        "list": lambda: request_cost._list_event(setup["token"]),
    }[route]
    if not framework:
        return events, lambda event: request_cost._call(app, event)
    if framework == "nolog":  # our handler with the request log line off
        return events, lambda event: _answered(request_cost._without_log_line(app, event))
    floor = floors[framework]
    return events, lambda event: _answered(floor(event, request_cost._support.LambdaContext()))


def _answered(response: dict[str, Any]) -> None:
    assert response["statusCode"] in (200, 201), response


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6])
    else:
        main()
