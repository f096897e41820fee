"""WhatsApp answering 429, 500, permanent errors, or too slowly, for a while, then healthy again.

A stream: N outbox rows, the fake Cloud API scripted with a bad period, and repeated
``send_due`` runs with time moved forward (every pending row made due) until the
outbox is quiet.  What must hold: every row that met only retryable errors is sent
exactly once (one wamid per dedupe key, the wamid the fake issued), rows that met a
permanent error are ``failed`` and never tried again, a too-slow answer leaves its row
``unknown`` (it may have been delivered) and it is never resent.
"""

import json
import random
import uuid
from collections import Counter
from typing import Any

import psycopg

from chalicelib.message_templates import CUSTOMER_CREATED
from chalicelib.notifications.sender import RetryPolicy, send_due
from chalicelib.notifications.whatsapp import WhatsAppClient
from devstack.whatsapp import FakeWhatsApp, Reply

ROWS = 40
# Enough attempts that no row gives up here (giving up is tested in test_notifications.py).
POLICY = RetryPolicy(max_attempts=50)


def add_rows(conn: psycopg.Connection[Any], count: int) -> dict[str, str]:
    """``count`` pending rows, each to its own recipient: {dedupe key: recipient without '+'}."""
    recipient_by_key: dict[str, str] = {}
    for index in range(count):
        key = f"fault:{uuid.uuid4()}"
        recipient = f"+62812{70_000_000 + index:08d}"
        payload = {"components": CUSTOMER_CREATED.components(key, "CUS-0000001", "INS-0000001"), "language": "id"}
        conn.execute(
            "INSERT INTO notification_outbox (dedupe_key, recipient, template, payload) VALUES (%s, %s, %s, %s)",
            (key, recipient, "customer_created", json.dumps(payload)),
        )
        recipient_by_key[key] = recipient.removeprefix("+")
    return recipient_by_key


def run_until_quiet(conn: psycopg.Connection[Any], client: WhatsAppClient) -> tuple[int, Counter[str]]:
    """send_due again and again, every pending row made due each time, until nothing is pending."""
    totals: Counter[str] = Counter()
    for run in range(1, 200):
        totals.update(send_due(conn, client, limit=10, policy=POLICY, rng=random.Random(run)))  # noqa: S311
        pending = conn.execute(
            "UPDATE notification_outbox SET next_attempt_at = now() - interval '1 second' "
            "WHERE status = 'pending' RETURNING id"
        ).fetchall()
        if not pending:
            return run, totals
    raise AssertionError("the outbox never became quiet")


def test_a_bad_period_then_recovery_sends_each_message_once_and_fails_the_permanent_ones(
    conn: psycopg.Connection[Any],
) -> None:
    recipient_by_key = add_rows(conn, ROWS)
    bad_period = [
        Reply.http(429, retry_after=1),
        Reply.http(500),
        Reply.error(130429),  # throughput limit, as HTTP 400
        Reply.error(131016),  # service unavailable, HTTP 503
        Reply.error(131026),  # permanent: undeliverable
        Reply.http(503),
        Reply.error(132001),  # permanent: no such template
        Reply.error(131056),  # pair rate limit: this recipient only
        Reply.http(502),
        Reply.error(133004),
        Reply.slow(2.0),  # longer than the client waits: the outcome is unknown
        Reply.error(4),
    ] * 3
    with FakeWhatsApp() as fake:
        fake.queue(*bad_period)
        client = WhatsAppClient(fake.api_url, fake.phone_number_id, str(fake.token), timeout_s=0.5)
        runs, totals = run_until_quiet(conn, client)
        requests = fake.requests
        delivered = fake.delivered

    rows = conn.execute("SELECT dedupe_key, status, provider_message_id, attempts FROM notification_outbox").fetchall()
    status_by_key = {key: status for key, status, _, _ in rows}
    assert Counter(status_by_key.values()) == {"sent": ROWS - 9, "failed": 6, "unknown": 3}

    # Exactly once: each sent row has one delivery, with the wamid it stored.
    key_by_recipient = {recipient: key for key, recipient in recipient_by_key.items()}
    deliveries = Counter(key_by_recipient[m.to] for m in delivered)  # type: ignore[index]
    assert set(deliveries.values()) == {1}, "no message delivered twice"
    for key, status, wamid, _ in rows:
        if status == "sent":
            [message] = [m for m in delivered if m.to == recipient_by_key[key]]
            assert message.message_id == wamid, "the wamid stored is the one WhatsApp gave"

    # Each attempt is one request, and nothing is sent after a final state: a permanent
    # error or an unknown outcome ends the row's requests.
    tries = Counter(key_by_recipient[str(m.to)] for m in requests)
    last_status = {key_by_recipient[str(m.to)]: m.status for m in requests}
    for key, status, _, attempts in rows:
        assert tries[key] == attempts, (key, status)
        if status == "failed":
            assert last_status[key] in (400, 403, 404), "failed by a permanent error, not by giving up"
    assert totals["retried"] == 3 * 9  # every retryable reply of the bad period led to one retry
    assert totals["sent"] == ROWS - 9
    print(
        f"whatsapp bad period: {len(bad_period)} faults scripted, {len(requests)} requests, {runs} send_due runs, "
        f"{dict(Counter(status_by_key.values()))}"
    )
