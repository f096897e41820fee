"""SQL for the notification outbox: the only module that reads or writes ``notification_outbox``.

Every function is one statement on an autocommit connection, so each is its own
transaction: a claim is committed before the message is sent, and no transaction is
open while WhatsApp is called.  The outcome of a send is recorded only while the row
is still the claim that sent it (same ``attempts``), so a late sender never
overwrites a newer claim.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from chalicelib.platform.statements import statement
from chalicelib.statuses import NotificationStatus

if TYPE_CHECKING:
    import psycopg

_PENDING = NotificationStatus.PENDING.value
_SENDING = NotificationStatus.SENDING.value
_SENT = NotificationStatus.SENT.value
_FAILED = NotificationStatus.FAILED.value
_UNKNOWN = NotificationStatus.UNKNOWN.value

# A one-time code must not outlive its message in the database: on a final state a
# sensitive payload keeps its other keys and loses its components.
_REDACTED_PAYLOAD = (
    "CASE WHEN payload -> 'sensitive' = 'true'::jsonb "
    "THEN (payload - 'components') || jsonb_build_object('redacted', true) ELSE payload END"
)
# A final outcome may be recorded over ``unknown`` too: the lease sweep may have given
# up on a sender that was only slow, and what that sender learnt beats a guess.  A
# retry may not: the sweep has already redacted what a resend would need.
_STILL_OUR_CLAIM = "id = %(id)s AND attempts = %(attempt)s"
_FINAL_FROM = f"status IN ('{_SENDING}', '{_UNKNOWN}')"
_RETRY_FROM = f"status = '{_SENDING}'"


@dataclass(frozen=True)
class OutboxRow:
    """A claimed row: what to send, ``attempts`` (this claim's number, counting it), the request that wrote it."""

    id: UUID
    recipient: str
    template: str
    payload: dict[str, Any]
    attempts: int
    correlation_id: str | None = None

    @property
    def sensitive(self) -> bool:
        return self.payload.get("sensitive") is True


# The literal 'pending' lets the planner use the partial index notification_outbox_due_idx.
# SKIP LOCKED: concurrent senders each take different rows and never wait for one another.
_CLAIM = f"""
WITH due AS (
    SELECT id FROM notification_outbox
    WHERE status = '{_PENDING}' AND next_attempt_at <= now() {{only_ids}}
    ORDER BY next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE notification_outbox o
SET status = '{_SENDING}', attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => %(lease_s)s)
FROM due
WHERE o.id = due.id
RETURNING o.id, o.recipient, o.template, o.payload, o.attempts, o.correlation_id
"""
_CLAIM_ANY = statement(_CLAIM.format(only_ids=""))
_CLAIM_THESE = statement(_CLAIM.format(only_ids="AND id = ANY(%(ids)s)"))


def claim_due(
    conn: "psycopg.Connection[Any]", *, limit: int, lease_s: float, ids: list[UUID] | None = None
) -> list[OutboxRow]:
    """Up to ``limit`` due pending rows (only ``ids`` when given), now ``sending`` until the lease ends.

    Raises ``ValueError`` on a connection that is not autocommit: the claim must be
    committed before the send, and no lock may be held while WhatsApp answers.
    """
    if not conn.autocommit:
        raise ValueError("the outbox needs an autocommit connection")
    claim = _CLAIM_THESE if ids is not None else _CLAIM_ANY
    rows = conn.execute(claim, {"limit": limit, "lease_s": lease_s, "ids": ids}).fetchall()
    return [OutboxRow(*row) for row in rows]


def _outcome(assignments: str, from_status: str) -> str:
    return statement(f"UPDATE notification_outbox SET {assignments} WHERE {_STILL_OUR_CLAIM} AND {from_status}")


_MARK_SENT = _outcome(
    f"status = '{_SENT}', provider_message_id = %(message_id)s, sent_at = now(), last_error = NULL, "
    f"payload = {_REDACTED_PAYLOAD}",
    _FINAL_FROM,
)
_MARK_RETRY = _outcome(
    f"status = '{_PENDING}', next_attempt_at = now() + make_interval(secs => %(delay_s)s), last_error = %(error)s",
    _RETRY_FROM,
)
_MARK_FAILED = _outcome(f"status = '{_FAILED}', last_error = %(error)s, payload = {_REDACTED_PAYLOAD}", _FINAL_FROM)
_MARK_UNKNOWN = _outcome(f"status = '{_UNKNOWN}', last_error = %(error)s, payload = {_REDACTED_PAYLOAD}", _FINAL_FROM)


def mark_sent(conn: "psycopg.Connection[Any]", row_id: UUID, attempt: int, provider_message_id: str) -> bool:
    """Record a delivery; False when the row is no longer this claim's."""
    return _update(conn, _MARK_SENT, {"id": row_id, "attempt": attempt, "message_id": provider_message_id})


def mark_retry(conn: "psycopg.Connection[Any]", row_id: UUID, attempt: int, delay_s: float, error: str) -> bool:
    """Back to ``pending``, due in ``delay_s``; False when the row is no longer this claim's."""
    return _update(conn, _MARK_RETRY, {"id": row_id, "attempt": attempt, "delay_s": delay_s, "error": error})


def mark_failed(conn: "psycopg.Connection[Any]", row_id: UUID, attempt: int, error: str) -> bool:
    """Never to be sent; False when the row is no longer this claim's."""
    return _update(conn, _MARK_FAILED, {"id": row_id, "attempt": attempt, "error": error})


def mark_unknown(conn: "psycopg.Connection[Any]", row_id: UUID, attempt: int, error: str) -> bool:
    """May have been delivered, so never resent; False when the row is no longer this claim's."""
    return _update(conn, _MARK_UNKNOWN, {"id": row_id, "attempt": attempt, "error": error})


_EXPIRE_LEASES = statement(
    f"UPDATE notification_outbox SET status = '{_UNKNOWN}', payload = {_REDACTED_PAYLOAD}, "
    "last_error = 'lease expired while sending: the sender stopped before recording an outcome' "
    f"WHERE status = '{_SENDING}' AND next_attempt_at < now() RETURNING id"
)


def expire_leases(conn: "psycopg.Connection[Any]") -> list[UUID]:
    """Rows still ``sending`` past their lease (their sender died mid-send), now ``unknown``."""
    rows = conn.execute(_EXPIRE_LEASES).fetchall()
    return [row[0] for row in rows]


_FAIL_TOO_LATE = statement(
    f"UPDATE notification_outbox SET status = '{_FAILED}', payload = {_REDACTED_PAYLOAD}, "
    "last_error = 'not sent before its content expired' "
    f"WHERE status = '{_PENDING}' AND payload ? 'valid_until' "
    "AND (payload ->> 'valid_until')::timestamptz <= now() RETURNING id"
)


def fail_too_late(conn: "psycopg.Connection[Any]") -> list[UUID]:
    """Pending rows past their payload's ``valid_until`` (a one-time code that has expired),
    now ``failed`` and redacted: the code is kept in clear no longer than it is good for,
    whether or not WhatsApp is up."""
    rows = conn.execute(_FAIL_TOO_LATE).fetchall()
    return [row[0] for row in rows]


def _update(conn: "psycopg.Connection[Any]", sql: str, params: dict[str, Any]) -> bool:
    cursor = conn.execute(sql, params)
    return cursor.rowcount == 1
