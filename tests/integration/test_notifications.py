"""The outbox sender against the real PostgreSQL and the fake_whatsapp Cloud API on loopback."""

import json
import random
import threading
import uuid
from typing import Any
from uuid import UUID

import psycopg
import pytest

from chalicelib.message_templates import CUSTOMER_CREATED
from chalicelib.notifications import outbox
from chalicelib.notifications.sender import RetryPolicy, send_due, send_now
from chalicelib.notifications.whatsapp import WhatsAppClient
from devstack.whatsapp import FakeWhatsApp, Reply

OTP_COMPONENTS = [
    {"type": "body", "parameters": [{"type": "text", "text": "482913"}]},
    {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "482913"}]},
]
WELCOME_COMPONENTS = CUSTOMER_CREATED.components("Budi Santoso", "CUS-0000001", "INS-0000001")


def add_row(
    conn: psycopg.Connection[Any],
    *,
    template: str = "customer_created",
    payload: dict[str, Any] | None = None,
    recipient: str | None = None,
    status: str = "pending",
    attempts: int = 0,
    due_in_s: float = -1,
) -> UUID:
    """A new outbox row (a unique recipient unless given); returns its id."""
    recipient = recipient or f"+62812{random.randrange(10**7, 10**8)}"  # noqa: S311
    payload = payload if payload is not None else {"components": WELCOME_COMPONENTS}
    row = conn.execute(
        "INSERT INTO notification_outbox (dedupe_key, recipient, template, payload, status, attempts, next_attempt_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s)) RETURNING id",
        (f"test:{uuid.uuid4()}", recipient, template, json.dumps(payload), status, attempts, due_in_s),
    ).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def row_of(conn: psycopg.Connection[Any], row_id: UUID) -> dict[str, Any]:
    row = conn.execute(
        "SELECT to_jsonb(o) || jsonb_build_object('due_in_s', extract(epoch FROM next_attempt_at - now())) "
        "FROM notification_outbox o WHERE id = %s",
        (row_id,),
    ).fetchone()
    assert row is not None
    document: dict[str, Any] = row[0]
    return document


def make_due(conn: psycopg.Connection[Any]) -> None:
    """Let time pass: every pending row is due now."""
    conn.execute(
        "UPDATE notification_outbox SET next_attempt_at = now() - interval '1 second' WHERE status = 'pending'"
    )


def counts(**non_zero: int) -> dict[str, int]:
    return {"sent": 0, "retried": 0, "failed": 0, "unknown": 0, "expired": 0, "too_late": 0, **non_zero}


# Deterministic jitter for the backoff assertions.
def rng() -> random.Random:
    return random.Random(7)  # noqa: S311


def test_success_stores_the_wamid_and_sends_once(
    conn: psycopg.Connection[Any], fake_whatsapp: FakeWhatsApp, whatsapp_client: WhatsAppClient
) -> None:
    row_id = add_row(conn, recipient="+6281234567890", payload={"components": WELCOME_COMPONENTS, "language": "id"})

    assert send_due(conn, whatsapp_client) == counts(sent=1)
    make_due(conn)
    assert send_due(conn, whatsapp_client) == counts()

    [request] = fake_whatsapp.requests
    row = row_of(conn, row_id)
    assert row["status"] == "sent"
    assert row["provider_message_id"] == request.message_id
    assert row["provider_message_id"].startswith("wamid.")
    assert row["sent_at"] is not None
    assert (row["attempts"], row["last_error"]) == (1, None)
    assert row["payload"]["components"] == WELCOME_COMPONENTS  # not sensitive: kept
    assert request.body["to"] == "6281234567890"
    assert request.body["template"] == {
        "name": "customer_created",
        "language": {"code": "id"},
        "components": WELCOME_COMPONENTS,
    }


def test_http_429_is_retried_after_retry_after_then_sent_once(
    conn: psycopg.Connection[Any], fake_whatsapp: FakeWhatsApp, whatsapp_client: WhatsAppClient
) -> None:
    row_id = add_row(conn)
    fake_whatsapp.queue(Reply.http(429, retry_after=20))

    assert send_due(conn, whatsapp_client) == counts(retried=1)
    row = row_of(conn, row_id)
    assert row["status"] == "pending"
    assert 18 < row["due_in_s"] <= 20
    assert "HTTP 429" in row["last_error"]
    assert send_due(conn, whatsapp_client) == counts()  # not due yet

    make_due(conn)
    assert send_due(conn, whatsapp_client) == counts(sent=1)
    assert row_of(conn, row_id)["status"] == "sent"
    assert row_of(conn, row_id)["attempts"] == 2
    assert len(fake_whatsapp.requests) == 2
    assert len(fake_whatsapp.delivered) == 1


@pytest.mark.parametrize(
    ("reply", "named"),
    [
        (Reply.http(500), "HTTP 500"),
        (Reply.http(503), "HTTP 503"),
        (Reply.error(130429), "code 130429"),
        (Reply.error(131056), "code 131056"),
        (Reply.error(131000, status=500), "code 131000"),
    ],
)
def test_temporary_failures_are_retried_with_backoff(
    conn: psycopg.Connection[Any],
    fake_whatsapp: FakeWhatsApp,
    whatsapp_client: WhatsAppClient,
    reply: Reply,
    named: str,
) -> None:
    row_id = add_row(conn)
    fake_whatsapp.queue(reply)

    assert send_due(conn, whatsapp_client, rng=rng()) == counts(retried=1)
    row = row_of(conn, row_id)
    assert row["status"] == "pending"
    assert row["due_in_s"] > 0.5  # backoff: in the future
    assert named in row["last_error"]

    make_due(conn)
    assert send_due(conn, whatsapp_client) == counts(sent=1)
    assert len(fake_whatsapp.delivered) == 1


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_delay_s=30, max_delay_s=600, min_delay_s=1)
    generator = rng()
    for attempt in range(1, 10):
        ceiling = min(600, 30 * 2 ** (attempt - 1))
        delays = [policy.delay_s(attempt, None, generator) for _ in range(200)]
        assert all(1 <= delay <= ceiling for delay in delays)
        assert max(delays) > ceiling * 0.8  # spread over the whole range, not a fixed step
    assert policy.delay_s(3, 45.0, generator) == 45.0  # Retry-After wins
    assert policy.delay_s(3, 10_000.0, generator) == 600  # capped


@pytest.mark.parametrize("code", [131026, 132000, 132001, 131047, 100])
def test_permanent_errors_fail_the_row_and_are_not_retried(
    conn: psycopg.Connection[Any], fake_whatsapp: FakeWhatsApp, whatsapp_client: WhatsAppClient, code: int
) -> None:
    row_id = add_row(conn)
    fake_whatsapp.queue(Reply.error(code))

    assert send_due(conn, whatsapp_client) == counts(failed=1)
    make_due(conn)
    assert send_due(conn, whatsapp_client) == counts()

    row = row_of(conn, row_id)
    assert row["status"] == "failed"
    assert f"code {code}" in row["last_error"]
    assert row["provider_message_id"] is None
    assert len(fake_whatsapp.requests) == 1


def test_a_slow_answer_is_unknown_and_never_resent(
    conn: psycopg.Connection[Any], fake_whatsapp: FakeWhatsApp, whatsapp_client: WhatsAppClient
) -> None:
    row_id = add_row(conn)
    fake_whatsapp.queue(Reply.slow(1.0))

    assert send_due(conn, whatsapp_client) == counts(unknown=1)
    for _ in range(3):
        make_due(conn)
        assert send_due(conn, whatsapp_client) == counts()

    row = row_of(conn, row_id)
    assert row["status"] == "unknown"
    assert "timed out" in row["last_error"]
    assert len(fake_whatsapp.requests) == 1


def test_a_connection_dropped_after_sending_is_unknown(
    conn: psycopg.Connection[Any], fake_whatsapp: FakeWhatsApp, whatsapp_client: WhatsAppClient
) -> None:
    row_id = add_row(conn)
    fake_whatsapp.queue(Reply.dropped())
    assert send_due(conn, whatsapp_client) == counts(unknown=1)
    assert row_of(conn, row_id)["status"] == "unknown"


def test_whatsapp_down_then_back_sends_every_row_exactly_once(
    conn: psycopg.Connection[Any], fake_whatsapp: FakeWhatsApp, whatsapp_client: WhatsAppClient
) -> None:
    row_ids = [add_row(conn) for _ in range(5)]
    fake_whatsapp.stop()

    # The outage stops the batch at its first row: the others keep their attempts.
    assert send_due(conn, whatsapp_client) == counts(retried=1)
    make_due(conn)
    assert send_due(conn, whatsapp_client) == counts(retried=1)
    rows = [row_of(conn, row_id) for row_id in row_ids]
    assert {row["status"] for row in rows} == {"pending"}
    assert sum(row["attempts"] for row in rows) == 2
    assert all("could not connect" in row["last_error"] for row in rows if row["attempts"])

    fake_whatsapp.start()
    make_due(conn)
    assert send_due(conn, whatsapp_client) == counts(sent=5)
    make_due(conn)
    assert send_due(conn, whatsapp_client) == counts()

    recipients = [str(request.to) for request in fake_whatsapp.delivered]
    assert len(recipients) == 5
    assert sorted(recipients) == sorted(str(row_of(conn, row_id)["recipient"]).lstrip("+") for row_id in row_ids)


def test_throttling_stops_the_batch_but_a_pair_rate_limit_does_not(
    conn: psycopg.Connection[Any], fake_whatsapp: FakeWhatsApp, whatsapp_client: WhatsAppClient
) -> None:
    first, second = add_row(conn, due_in_s=-20), add_row(conn, due_in_s=-10)
    fake_whatsapp.queue(Reply.error(130429))
    assert send_due(conn, whatsapp_client) == counts(retried=1)
    assert row_of(conn, second)["attempts"] == 0

    conn.execute("DELETE FROM notification_outbox WHERE id IN (%s, %s)", (first, second))
    first, second = add_row(conn, due_in_s=-20), add_row(conn, due_in_s=-10)
    fake_whatsapp.queue(Reply.error(131056))
    assert send_due(conn, whatsapp_client) == counts(retried=1, sent=1)
    assert row_of(conn, second)["status"] == "sent"


def test_the_eighth_failed_attempt_fails_the_row(
    conn: psycopg.Connection[Any], fake_whatsapp: FakeWhatsApp, whatsapp_client: WhatsAppClient
) -> None:
    row_id = add_row(conn)
    for attempt in range(1, 9):
        fake_whatsapp.queue(Reply.http(500))
        make_due(conn)
        outcome = send_due(conn, whatsapp_client)
        assert outcome == (counts(retried=1) if attempt < 8 else counts(failed=1))

    make_due(conn)
    assert send_due(conn, whatsapp_client) == counts()
    row = row_of(conn, row_id)
    assert (row["status"], row["attempts"]) == ("failed", 8)
    assert row["last_error"].startswith("gave up after 8 attempts: ")
    assert len(fake_whatsapp.requests) == 8


def test_concurrent_senders_never_send_a_row_twice(
    migrated_db: str, conn: psycopg.Connection[Any], fake_whatsapp: FakeWhatsApp, whatsapp_client: WhatsAppClient
) -> None:
    row_ids = [add_row(conn) for _ in range(40)]
    # A little latency per answer, so that the two senders interleave.
    fake_whatsapp.queue(*[Reply.slow(0.005)] * 40)
    start = threading.Barrier(2)
    results: list[dict[str, int]] = []

    def sender() -> None:
        with psycopg.connect(migrated_db, autocommit=True) as own:
            start.wait()
            results.append(send_due(own, whatsapp_client, limit=50))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sum(result["sent"] for result in results) == 40
    assert all(result["sent"] > 0 for result in results), results  # both took part
    recipients = [request.to for request in fake_whatsapp.requests]
    assert len(recipients) == len(set(recipients)) == 40
    assert {row_of(conn, row_id)["status"] for row_id in row_ids} == {"sent"}


def test_a_row_left_sending_past_its_lease_becomes_unknown_and_is_not_resent(
    conn: psycopg.Connection[Any], fake_whatsapp: FakeWhatsApp, whatsapp_client: WhatsAppClient
) -> None:
    stale = add_row(
        conn, status="sending", attempts=1, due_in_s=-5, payload={"components": OTP_COMPONENTS, "sensitive": True}
    )
    in_flight = add_row(conn, status="sending", attempts=1, due_in_s=60)

    assert send_due(conn, whatsapp_client) == counts(expired=1)
    make_due(conn)
    assert send_due(conn, whatsapp_client) == counts()

    row = row_of(conn, stale)
    assert row["status"] == "unknown"
    assert "lease expired" in row["last_error"]
    assert row["payload"] == {"sensitive": True, "redacted": True}
    assert row_of(conn, in_flight)["status"] == "sending"  # its sender may still be at work
    assert fake_whatsapp.requests == []


@pytest.mark.parametrize(
    ("reply", "status"),
    [(Reply.success(), "sent"), (Reply.error(132000), "failed"), (Reply.slow(1.0), "unknown")],
)
def test_a_sensitive_payload_loses_its_components_on_a_final_state(
    conn: psycopg.Connection[Any],
    fake_whatsapp: FakeWhatsApp,
    whatsapp_client: WhatsAppClient,
    reply: Reply,
    status: str,
) -> None:
    payload = {"components": OTP_COMPONENTS, "sensitive": True, "language": "id", "purpose": "otp"}
    row_id = add_row(conn, template="registration_otp", payload=payload)
    fake_whatsapp.queue(reply)

    send_due(conn, whatsapp_client)

    row = row_of(conn, row_id)
    assert row["status"] == status
    assert row["payload"] == {"sensitive": True, "language": "id", "purpose": "otp", "redacted": True}
    assert "482913" not in json.dumps(row)
    assert fake_whatsapp.requests[0].body["template"]["components"] == OTP_COMPONENTS


def test_a_sensitive_payload_is_kept_while_a_retry_needs_it(
    conn: psycopg.Connection[Any], fake_whatsapp: FakeWhatsApp, whatsapp_client: WhatsAppClient
) -> None:
    row_id = add_row(conn, template="registration_otp", payload={"components": OTP_COMPONENTS, "sensitive": True})
    fake_whatsapp.queue(Reply.http(503))
    assert send_due(conn, whatsapp_client) == counts(retried=1)
    assert row_of(conn, row_id)["payload"]["components"] == OTP_COMPONENTS

    make_due(conn)
    assert send_due(conn, whatsapp_client) == counts(sent=1)
    assert fake_whatsapp.delivered[0].body["template"]["components"] == OTP_COMPONENTS
    assert "components" not in row_of(conn, row_id)["payload"]


def test_send_now_sends_only_the_given_rows(
    conn: psycopg.Connection[Any], fake_whatsapp: FakeWhatsApp, whatsapp_client: WhatsAppClient
) -> None:
    wanted, other, not_due, done = add_row(conn), add_row(conn), add_row(conn, due_in_s=60), add_row(conn)
    conn.execute("UPDATE notification_outbox SET status = 'sent' WHERE id = %s", (done,))

    assert send_now(conn, whatsapp_client, [wanted, not_due, done, uuid.uuid4()]) == counts(sent=1)

    assert row_of(conn, wanted)["status"] == "sent"
    assert (row_of(conn, other)["status"], row_of(conn, other)["attempts"]) == ("pending", 0)
    assert (row_of(conn, not_due)["status"], row_of(conn, not_due)["attempts"]) == ("pending", 0)
    assert [request.to for request in fake_whatsapp.requests] == [row_of(conn, wanted)["recipient"].lstrip("+")]


def test_send_now_never_raises_and_leaves_the_row_for_the_scheduled_sender(
    conn: psycopg.Connection[Any], migrated_db: str, fake_whatsapp: FakeWhatsApp, whatsapp_client: WhatsAppClient
) -> None:
    row_id = add_row(conn)
    fake_whatsapp.stop()
    assert send_now(conn, whatsapp_client, [row_id]) == counts(retried=1)

    closed = psycopg.connect(migrated_db, autocommit=True)
    closed.close()
    assert send_now(closed, whatsapp_client, [row_id]) == counts()  # the database gone too: still no raise

    fake_whatsapp.start()
    make_due(conn)
    assert send_due(conn, whatsapp_client) == counts(sent=1)
    assert len(fake_whatsapp.delivered) == 1


def test_a_late_outcome_never_overwrites_a_newer_claim(conn: psycopg.Connection[Any]) -> None:
    row_id = add_row(conn)
    [claimed] = outbox.claim_due(conn, limit=1, lease_s=60)
    assert claimed.attempts == 1
    assert not outbox.mark_sent(conn, row_id, 0, "wamid.stale")  # an older claim's answer
    assert outbox.mark_retry(conn, row_id, 1, 1.0, "HTTP 500")
    assert not outbox.mark_sent(conn, row_id, 1, "wamid.late")  # back to pending: no longer a claim
    assert row_of(conn, row_id)["provider_message_id"] is None


def test_the_claim_refuses_a_connection_that_is_not_autocommit(migrated_db: str) -> None:
    with psycopg.connect(migrated_db) as plain, pytest.raises(ValueError, match="autocommit"):
        outbox.claim_due(plain, limit=1, lease_s=60)


def test_send_due_respects_its_limit_and_sends_oldest_first(
    conn: psycopg.Connection[Any], fake_whatsapp: FakeWhatsApp, whatsapp_client: WhatsAppClient
) -> None:
    newest, oldest, middle = add_row(conn, due_in_s=-1), add_row(conn, due_in_s=-30), add_row(conn, due_in_s=-10)
    assert send_due(conn, whatsapp_client, limit=2) == counts(sent=2)
    assert [row_of(conn, row_id)["status"] for row_id in (oldest, middle, newest)] == ["sent", "sent", "pending"]


def test_a_slow_sender_after_its_lease_expired_records_a_delivery_but_never_a_retry(
    conn: psycopg.Connection[Any],
) -> None:
    delivered, throttled = add_row(conn), add_row(conn)
    claims = outbox.claim_due(conn, limit=2, lease_s=0.01)
    assert {claim.id for claim in claims} == {delivered, throttled}
    conn.execute("SELECT pg_sleep(0.05)")
    assert len(outbox.expire_leases(conn)) == 2

    assert outbox.mark_sent(conn, delivered, 1, "wamid.late")
    assert not outbox.mark_retry(conn, throttled, 1, 1.0, "HTTP 429")
    assert (row_of(conn, delivered)["status"], row_of(conn, delivered)["provider_message_id"]) == ("sent", "wamid.late")
    assert row_of(conn, throttled)["status"] == "unknown"


def test_logs_name_the_row_and_the_error_code_never_the_phone_or_the_code_sent(
    conn: psycopg.Connection[Any],
    fake_whatsapp: FakeWhatsApp,
    whatsapp_client: WhatsAppClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    payload = {"components": OTP_COMPONENTS, "sensitive": True}
    sent, failed = (add_row(conn, template="registration_otp", payload=payload, due_in_s=s) for s in (-20, -10))
    fake_whatsapp.queue(Reply.success(), Reply.error(131026))
    caplog.set_level("DEBUG", logger="chalicelib")

    assert send_due(conn, whatsapp_client) == counts(sent=1, failed=1)

    assert str(sent) in caplog.text
    assert str(failed) in caplog.text
    assert "code=131026" in caplog.text
    for row_id in (sent, failed):
        assert row_of(conn, row_id)["recipient"].lstrip("+") not in caplog.text
    assert "482913" not in caplog.text


class BrokenClient:
    """A whatsapp_client with a bug of its own: it raises what no WhatsApp error class covers."""

    def send_template(self, recipient: str, template: str, *, components: list[Any], language: str = "id") -> str:
        raise RuntimeError("a bug")


def test_an_unexpected_error_while_sending_is_unknown_not_resent(conn: psycopg.Connection[Any]) -> None:
    row_id = add_row(conn)
    assert send_due(conn, BrokenClient()) == counts(unknown=1)
    assert send_now(conn, BrokenClient(), [add_row(conn)]) == counts(unknown=1)
    row = row_of(conn, row_id)
    assert row["status"] == "unknown"
    assert "RuntimeError" in row["last_error"]
