"""``make pool-load``: 400 warm containers at once against a PostgreSQL with ``max_connections = 50``,
through pgbouncer in transaction mode, then the same load straight to the server.

    python -m tests.pool_load [--clients 400] [--max-connections 50] [--pool-size 40] [--mode both|pool|direct]

Each client is one warm Lambda container: its own ``Database`` (one connection, opened at
first use by the app's own ``database.connect``, ``DB_PREPARED_STATEMENTS=0`` as in the AWS
stages), all started together behind a barrier.  Each registers two people, lists
registrations, moves the first through verify, schedule-survey, complete-survey and approve,
and runs a worker batch that carries its create-customer message twice (a duplicate SQS
delivery).  Afterwards, by SQL: every registration a client was answered for exists (0 lost),
no more rows than answers, one customer and one ``customer_created`` message per processed
registration (0 duplicated), and each is in the status its client left it in.

Loopback only (a server and a pgbouncer of its own on 127.0.0.1), bounded: each mode stops
after ``--seconds`` (120 by default).  Needs pgbouncer (Debian's package).  Exit 1 when the
pooled run has an error, a lost or a duplicated row, or when (both modes run) the direct
run never ran out of connections; the direct run's own errors ("too many clients") are
the figure it is there for.
"""

import argparse
import json
import logging
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from chalicelib.customers import service as customers
from chalicelib.customers.messages import CreateCustomer
from chalicelib.migrate import run
from chalicelib.platform.database import Database
from chalicelib.platform.settings import Settings
from chalicelib.registrations import service
from chalicelib.registrations.models import CompleteSurveyIn, ListQuery, RegistrationIn, ScheduleSurveyIn, VerifyIn
from chalicelib.registrations.otp import SendBudget
from chalicelib.staff import Role, Staff
from chalicelib.workflow import Action
from tests.support import pg_tcp, pgbouncer, sqs_events

ROOT = Path(__file__).resolve().parents[1]
LOGIN, PASSWORD = "registration_app_load", "load-login-for-tests-only"
OTP_KEY = "pool-load-otp-key"
STAFF = Staff("load-staff", frozenset({Role.ADMIN}))
STALE_AFTER = timedelta(hours=24)
# PostgreSQL's two refusals when max_connections is reached: "sorry, too many clients
# already", and "remaining connection slots are reserved for roles with the SUPERUSER
# attribute" once only the superuser's reserved slots are left.
NO_SLOT = ("too many clients", "remaining connection slots are reserved")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.pool_load", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=400)
    parser.add_argument("--max-connections", type=int, default=50)
    parser.add_argument("--pool-size", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--mode", choices=["both", "pool", "direct"], default="both")
    args = parser.parse_args(argv)
    if args.mode != "direct" and pgbouncer.binary() is None:
        print(f"pool-load: {pgbouncer.SKIP_REASON}", file=sys.stderr)
        return 2
    # Thousands of request lines (and, straight to the server, thousands of refusals): the summary says it all.
    # Run in-process by tests/integration/test_pool.py: the switch is put back, or every later test's
    # log lines (and the suite's PII scan of them) would be silenced in that worker.
    was = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        return _modes(args)
    finally:
        logging.disable(was)


def _modes(args: argparse.Namespace) -> int:
    modes = ["pool", "direct"] if args.mode == "both" else [args.mode]
    summaries: dict[str, dict[str, Any]] = {}
    settings = {"max_connections": str(args.max_connections), "fsync": "off", "synchronous_commit": "off"}
    with pg_tcp.running(settings) as server:
        for mode in modes:
            summaries[mode] = _one_mode(server, mode, args)
            print(json.dumps({mode: summaries[mode]}, indent=2), flush=True)
    pooled, direct = summaries.get("pool"), summaries.get("direct")
    if pooled is not None and (pooled["errors"] or pooled["violations"]):
        print("pool-load: FAILED through the pool", file=sys.stderr)
        return 1
    if pooled is not None and direct is not None and not direct["too_many_clients"]:
        print("pool-load: the load never ran out of connections without the pool: it proves nothing", file=sys.stderr)
        return 1
    return 0


def _one_mode(server: pg_tcp.Server, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    admin = server.url(f"load_{mode}")
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE load_{mode}".encode())
    report = run("apply", admin, migrations_dir=ROOT / "migrations")
    assert report["ok"], report
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{LOGIN}') THEN "
            f"CREATE ROLE {LOGIN} LOGIN PASSWORD '{PASSWORD}' IN ROLE registration_app; END IF; END $$".encode()
        )
        row = conn.execute(
            "INSERT INTO packages (name, speed_mbps, monthly_price_idr) VALUES ('Load', 50, 350000) RETURNING id"
        ).fetchone()
    assert row is not None
    runtime_url = make_conninfo(admin, user=LOGIN, password=PASSWORD)
    if mode == "pool":
        users = [(LOGIN, PASSWORD), ("postgres", "")]
        with pgbouncer.running(runtime_url, users, pool_size=args.pool_size) as bouncer:
            summary = _load(bouncer.url(runtime_url), str(row[0]), args)
    else:
        summary = _load(runtime_url, str(row[0]), args)
    summary["violations"] = _check(admin, summary.pop("expected"))
    summary.update(
        mode=mode, max_connections=args.max_connections, pool_size=args.pool_size if mode == "pool" else None
    )
    return summary


def _load(url: str, package_id: str, args: argparse.Namespace) -> dict[str, Any]:
    barrier = threading.Barrier(args.clients, timeout=60)
    deadline = time.monotonic() + args.seconds
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        try:
            result = _container(number, url, package_id, barrier, deadline)
        except Exception as error:  # a bug of the load itself: counted, never hidden
            result = {
                "outcomes": Counter({f"client crashed: {type(error).__name__}: {error}"[:160]: 1}),
                "statuses": {},
            }
        with lock:
            results.append(result)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + 5)
    seconds = time.monotonic() - started
    outcomes: Counter[str] = Counter()
    expected: dict[str, str] = {}
    for result in results:
        outcomes.update(result["outcomes"])
        expected.update(result["statuses"])
    outcomes["client did not finish in time"] += args.clients - len(results)
    errors = {key: n for key, n in outcomes.items() if n and not key.endswith(" ok")}
    return {
        "clients": args.clients,
        "clients_finished": len(results),
        "seconds": round(seconds, 1),
        "operations": sum(outcomes.values()),
        "ok": sum(n for key, n in outcomes.items() if key.endswith(" ok")),
        "errors": sum(errors.values()),
        "too_many_clients": sum(n for key, n in errors.items() if "too many clients" in key),
        "outcomes": {key: n for key, n in sorted(outcomes.items()) if n},
        "expected": expected,
    }


def _container(number: int, url: str, package_id: str, barrier: threading.Barrier, deadline: float) -> dict[str, Any]:
    """One warm container's work; what happened to each operation, and each registration's final status."""
    settings = Settings.from_env({"DATABASE_URL": url, "DB_PREPARED_STATEMENTS": "0", "DB_CONNECT_TIMEOUT_S": "30"})
    database = Database(lambda: url, lambda: settings)
    outcomes: Counter[str] = Counter()
    statuses: dict[str, str] = {}

    def attempt(name: str, work: Any) -> Any:
        if time.monotonic() > deadline:
            outcomes[f"{name} not run: out of time"] += 1
            return None
        try:
            value = database.run(work)
        except Exception as error:  # counted by kind: the load's figure
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            kind = f"{type(error).__name__}: {first_line}"
            if any(refusal in str(error) for refusal in NO_SLOT):
                kind = "too many clients"
            outcomes[f"{name} failed: {kind[:120]}"] += 1
            return None
        outcomes[f"{name} ok"] += 1
        return value

    budget = SendBudget(f"198.51.100.{number % 250}", per_client_per_hour=10_000, per_day=10_000_000)
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        outcomes["barrier broken"] += 1
    registered: list[str] = []
    for k in range(2):
        body = RegistrationIn.model_validate_json(json.dumps(_person(number, k, package_id)))
        done = attempt(
            "register",
            lambda conn, b=body: service.register(conn, b, OTP_KEY, budget=budget, stale_after=STALE_AFTER),
        )
        if done is not None:
            assert done.status == 201, done.body
            registered.append(str(done.body["id"]))
            statuses[str(done.body["id"])] = "pending_verification"
    attempt("list", lambda conn: service.list_registrations(conn, STAFF, ListQuery(limit=20)))
    if not registered:
        database.reset()
        return {"outcomes": outcomes, "statuses": statuses}
    first = registered[0]
    steps: list[tuple[Action, Any, str]] = [
        (Action.VERIFY, VerifyIn.model_validate_json("{}"), "verified"),
        (Action.SCHEDULE_SURVEY, ScheduleSurveyIn.model_validate_json(_SCHEDULE), "survey_scheduled"),
        (Action.COMPLETE_SURVEY, CompleteSurveyIn.model_validate_json(_COMPLETE), "survey_completed"),
        (Action.APPROVE, None, "approved"),
    ]
    for action, step_body, status in steps:
        if attempt(action.value, lambda conn, a=action, b=step_body: service.act(conn, first, a, STAFF, b)) is None:
            break
        statuses[first] = status
    if statuses[first] == "approved":
        message = json.dumps(CreateCustomer.new(uuid.UUID(first), "x").to_body())
        records = [sqs_events.record(message), sqs_events.record(message)]  # the second: a duplicate delivery
        batch = _batch(database, records)
        outcomes["worker batch ok" if batch == [] else f"worker batch failed: {len(batch)} records"] += 1
        if not batch:
            statuses[first] = "customer_created"
    database.reset()
    return {"outcomes": outcomes, "statuses": statuses}


def _batch(database: Database, records: list[dict[str, Any]]) -> list[Any]:
    try:
        return list(customers.create_customers(database, records, notify=lambda ids: None)["batchItemFailures"])
    except Exception as error:  # a failure outside the per-record handling
        return [type(error).__name__]


def _check(admin_url: str, expected: dict[str, str]) -> list[str]:
    """What the database says against what the clients were told; empty when it all holds."""
    violations: list[str] = []
    with psycopg.connect(admin_url) as conn:
        found: dict[str, str] = dict(conn.execute("SELECT id::text, status FROM customer_registrations").fetchall())
        lost = [i for i in expected if i not in found]
        extra = [i for i in found if i not in expected]
        wrong = [i for i, status in expected.items() if i in found and found[i] != status]
        customer_rows = conn.execute("SELECT registration_id::text, count(*) FROM customers GROUP BY 1").fetchall()
        messages = conn.execute(
            "SELECT registration_id::text, count(*) FROM notification_outbox WHERE template = 'customer_created' "
            "GROUP BY 1"
        ).fetchall()
    created = {i for i, status in expected.items() if status == "customer_created"}
    duplicated = [i for i, n in customer_rows if n != 1] + [i for i, n in messages if n != 1]
    if lost:
        violations.append(f"{len(lost)} registrations answered 201 are missing")
    if extra:
        violations.append(f"{len(extra)} registrations nobody was answered for")
    if wrong:
        violations.append(f"{len(wrong)} registrations in another status than their client left them")
    if duplicated:
        violations.append(f"{len(duplicated)} registrations with more than one customer or welcome message")
    if {i for i, _ in customer_rows} != created or {i for i, _ in messages} != created:
        violations.append("customers or welcome messages do not match the processed registrations")
    return violations


def _person(number: int, k: int, package_id: str) -> dict[str, Any]:
    return {
        "full_name": f"Pelanggan {number} {k}",
        "email": f"load{number}x{k}@example.co.id",
        "phone": f"0813{number:06d}{k:02d}",
        "address": f"Jl. Beban No. {number}",
        "city": "Surabaya",
        "package_id": package_id,
    }


_SCHEDULE = json.dumps(
    {
        "scheduled_at": (datetime.now(UTC) + timedelta(days=7)).replace(hour=3, minute=0, microsecond=0).isoformat(),
        "surveyor": "Budi",
    }
)
_COMPLETE = json.dumps({"feasible": True, "notes": "Tiang dekat rumah"})


if __name__ == "__main__":
    sys.exit(main())
