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


def claim_due(
    conn: "psycopg.Connection[Any]", *, limit: int, lease_s: float, ids: list[UUID] | None = None
) -> list[OutboxRow]:
    """Up to ``limit`` due pending rows (only ``ids`` when given), now ``sending`` until the lease ends.

    Raises ``ValueError`` on a connection that is not autocommit: the claim must be
    committed before the send, and no lock may be held while WhatsApp answers.
    """
    if not conn.autocommit:
        raise ValueError("the outbox needs an autocommit connection")
    statement = _CLAIM.format(only_ids="AND id = ANY(%(ids)s)" if ids is not None else "")
    rows = conn.execute(statement, {"limit": limit, "lease_s": lease_s, "ids": ids}).fetchall()
    return [OutboxRow(*row) for row in rows]


def mark_sent(conn: "psycopg.Connection[Any]", row_id: UUID, attempt: int, provider_message_id: str) -> bool:
    """Record a delivery; False when the row is no longer this claim's."""
    return _update(
        conn,
        f"status = '{_SENT}', provider_message_id = %(message_id)s, sent_at = now(), last_error = NULL, "
        f"payload = {_REDACTED_PAYLOAD}",
        {"id": row_id, "attempt": attempt, "message_id": provider_message_id},
        _FINAL_FROM,
    )


def mark_retry(conn: "psycopg.Connection[Any]", row_id: UUID, attempt: int, delay_s: float, error: str) -> bool:
    """Back to ``pending``, due in ``delay_s``; False when the row is no longer this claim's."""
    return _update(
        conn,
        f"status = '{_PENDING}', next_attempt_at = now() + make_interval(secs => %(delay_s)s), last_error = %(error)s",
        {"id": row_id, "attempt": attempt, "delay_s": delay_s, "error": error},
        _RETRY_FROM,
    )


def mark_failed(conn: "psycopg.Connection[Any]", row_id: UUID, attempt: int, error: str) -> bool:
    """Never to be sent; False when the row is no longer this claim's."""
    return _update(
        conn,
        f"status = '{_FAILED}', last_error = %(error)s, payload = {_REDACTED_PAYLOAD}",
        {"id": row_id, "attempt": attempt, "error": error},
        _FINAL_FROM,
    )


def mark_unknown(conn: "psycopg.Connection[Any]", row_id: UUID, attempt: int, error: str) -> bool:
    """May have been delivered, so never resent; False when the row is no longer this claim's."""
    return _update(
        conn,
        f"status = '{_UNKNOWN}', last_error = %(error)s, payload = {_REDACTED_PAYLOAD}",
        {"id": row_id, "attempt": attempt, "error": error},
        _FINAL_FROM,
    )


def expire_leases(conn: "psycopg.Connection[Any]") -> list[UUID]:
    """Rows still ``sending`` past their lease (their sender died mid-send), now ``unknown``."""
    rows = conn.execute(
        f"UPDATE notification_outbox SET status = '{_UNKNOWN}', payload = {_REDACTED_PAYLOAD}, "
        "last_error = 'lease expired while sending: the sender stopped before recording an outcome' "
        f"WHERE status = '{_SENDING}' AND next_attempt_at < now() RETURNING id"
    ).fetchall()
    return [row[0] for row in rows]


def _update(conn: "psycopg.Connection[Any]", assignments: str, params: dict[str, Any], from_status: str) -> bool:
    statement = f"UPDATE notification_outbox SET {assignments} WHERE {_STILL_OUR_CLAIM} AND {from_status}"
    cursor = conn.execute(statement, params)
    return cursor.rowcount == 1
