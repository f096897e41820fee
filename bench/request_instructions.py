"""A warm request's cost in CPU instructions (valgrind's callgrind): the same on a busy machine as on a quiet one.

Usage: python bench/request_instructions.py [--database-url URL] [--requests N] [--tree DIR] [KIND ...]

KIND is ``create``, ``schedule``, ``list`` (the handler, as ``bench/request_cost.py``
calls it) or ``bare-create``, ``bare-schedule``, ``bare-list`` (the same statement run
directly with psycopg).  For each, a child process under ``valgrind --tool=callgrind``
imports ``app`` from ``--tree`` (this checkout by default: point it at another checkout
to compare), warms up with 30 calls, makes N events and calls them; a second child makes
the same events without calling them.  The difference over N is one call's instructions,
client side only (the server's work is not in it).  Needs valgrind; takes minutes.
"""

import argparse
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
KINDS = ("create", "schedule", "list", "bare-create", "bare-schedule", "bare-list")
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
        result = {kind: _per_call(args.tree, kind, args.requests, setup) for kind in args.kinds}
    print(json.dumps({"instructions_per_call": result, "requests": args.requests, "tree": args.tree}, indent=2))


def _prepare(url: str, n: int) -> dict[str, Any]:
    import psycopg

    from bench import _support

    _support.seed_registrations(url, 2000, _support.STATUS_MIX, start=10_000_000)
    with psycopg.connect(url, autocommit=True) as conn:
        package = _support.insert_package(conn)
    verified = _support.seed_registrations(url, n + WARMUP, "verified", start=20_000_000)
    return {"url": url, "package": package, "verified": verified, "token": _support.staff_token("cs")}


def _per_call(tree: str, kind: str, n: int, setup: Path) -> int:
    called, made = (_instructions(tree, kind, n, setup, call) for call in (True, False))
    return round((called - made) / n)


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
    for name in ("WHATSAPP_API_URL", "WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_TOKEN"):
        os.environ.pop(name, None)
    import app  # from ``tree``; the events and the bare SQL come from this checkout's bench

    sys.path.insert(0, str(HERE.parents[1]))
    from bench import request_cost

    with open(os.devnull, "w") as sink:
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(sink)
        verified = iter(setup["verified"])
        make, run = _maker(kind, setup, verified, request_cost, app)
        for _ in range(WARMUP):
            run(make())
        events = [make() for _ in range(n)]
        if mode == "call":
            for event in events:
                run(event)
    os._exit(0)


def _maker(kind: str, setup: dict[str, Any], verified: Any, request_cost: Any, app: Any) -> tuple[Any, Any]:
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
    events = {
        "create": lambda: request_cost._create_event(setup["package"]),
        # schedule-survey is allowed again from survey_scheduled: the ids may come round twice.
        "schedule": lambda: request_cost._schedule_event(next(verified), setup["token"]),
        "list": lambda: request_cost._list_event(setup["token"]),
    }[kind]
    return events, lambda event: request_cost._call(app, event)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6])
    else:
        main()
