"""Sending the notification outbox to WhatsApp: ``send_due`` (the scheduled sender) and ``send_now``.

A row's life (``NotificationStatus``)::

    pending --claim--> sending --delivered-------------------------> sent
       ^                  |----retryable, attempts < max-------------> pending (after a backoff)
       |__________________|----permanent, or retryable at max -------> failed
                          |----timeout / connection lost after sending -> unknown
                          |----lease expired (the sender died) -------> unknown

``unknown`` rows are never sent again by the code: the message may have gone out,
and a person (or a delivery-status webhook) decides.  Sensitive payloads lose their
components on every final state.

Rows are claimed one at a time, each just before its send, so a sender killed
mid-batch (a Lambda timeout) leaves at most the one row it was sending in doubt, and
the lease needs to cover one send only.  A batch stops at the first error that is
about WhatsApp rather than the row (throttling, an outage, a timeout): the rest stay
pending with their attempts intact, and an outage turns no more than one row per run
into ``unknown``.
"""

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from chalicelib.message_templates import TEMPLATE_BY_NAME
from chalicelib.notifications import outbox
from chalicelib.notifications.outbox import OutboxRow
from chalicelib.notifications.whatsapp import (
    WhatsAppError,
    WhatsAppOutcomeUnknownError,
    WhatsAppPermanentError,
    WhatsAppRetryableError,
)
from chalicelib.platform import emf, logs

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "id"
# Throttling that concerns one recipient only: the batch may go on with the others.
PER_RECIPIENT_CODES = frozenset({131056})
_JITTER = random.Random()  # noqa: S311 (spreads retries; nothing secret depends on it)


class TemplateSender(Protocol):
    """What the service needs of a WhatsApp client (``chalicelib.notifications.whatsapp.WhatsAppClient``)."""

    def send_template(self, recipient: str, template: str, *, components: list[Any], language: str = ...) -> str: ...


class Outcome(StrEnum):
    """What one send did to its row; the keys of the counts ``send_due`` returns (with ``expired``).

    Each is also counted on the invocation's metrics, by template (``METRIC_BY_OUTCOME``).
    """

    SENT = "sent"
    RETRIED = "retried"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts, backoff and lease.  The lease must outlast one send (the client's timeouts)."""

    max_attempts: int = 8
    base_delay_s: float = 30.0
    max_delay_s: float = 3600.0
    min_delay_s: float = 1.0
    lease_s: float = 120.0

    def delay_s(self, attempt: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Seconds before the next attempt: ``Retry-After`` when given, else capped exponential full jitter."""
        if retry_after_s is not None:
            return min(self.max_delay_s, max(self.min_delay_s, retry_after_s))
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return rng.uniform(self.min_delay_s, max(self.min_delay_s, ceiling))


DEFAULT_POLICY = RetryPolicy()
METRIC_BY_OUTCOME = {
    Outcome.SENT: "NotificationSent",
    Outcome.RETRIED: "NotificationRetried",
    Outcome.FAILED: "NotificationFailed",
    Outcome.UNKNOWN: "NotificationUnknown",
}
LATENCY = "WhatsAppLatency"


def send_due(
    conn: "psycopg.Connection[Any]",
    client: TemplateSender,
    *,
    limit: int = 50,
    policy: RetryPolicy = DEFAULT_POLICY,
    rng: random.Random | None = None,
) -> dict[str, int]:
    """Send up to ``limit`` due rows; returns counts by outcome, ``expired`` leases turned ``unknown``,
    and rows ``too_late`` (their one-time code expired unsent: failed and redacted).

    Database errors propagate (the rows stay claimable or expire to ``unknown``);
    WhatsApp errors never do, they are recorded on the rows.
    """
    counts = _empty_counts()
    for row_id in outbox.expire_leases(conn):
        logger.warning("outbox %s: lease expired while sending; now unknown", row_id)
        counts["expired"] += 1
        emf.count(METRIC_BY_OUTCOME[Outcome.UNKNOWN])
    for row_id in outbox.fail_too_late(conn):
        logger.warning("outbox %s: not sent before its content expired; redacted", row_id)
        counts["too_late"] += 1
        emf.count(METRIC_BY_OUTCOME[Outcome.FAILED])

    def claim() -> list[OutboxRow]:
        return outbox.claim_due(conn, limit=1, lease_s=policy.lease_s)

    _send_claimed(conn, client, claim, limit, policy, rng or _JITTER, counts)
    return counts


def send_now(
    conn: "psycopg.Connection[Any]",
    client: TemplateSender,
    outbox_ids: Iterable[UUID],
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    rng: random.Random | None = None,
) -> dict[str, int]:
    """Send these rows now, if still pending and due (call it after the producer's commit).

    Never raises: the caller's work is committed and a notification must not undo it.
    What is not sent here stays in the outbox for ``send_due``.
    """
    counts = _empty_counts()
    remaining = list(dict.fromkeys(outbox_ids))

    def claim() -> list[OutboxRow]:
        while remaining:
            rows = outbox.claim_due(conn, limit=1, lease_s=policy.lease_s, ids=[remaining.pop(0)])
            if rows:
                return rows
        return []

    try:
        _send_claimed(conn, client, claim, len(remaining), policy, rng or _JITTER, counts)
    except Exception:
        logger.exception("send_now stopped; the outbox rows wait for the scheduled sender")
    return counts


def _send_claimed(
    conn: "psycopg.Connection[Any]",
    client: TemplateSender,
    claim: Callable[[], list[OutboxRow]],
    limit: int,
    policy: RetryPolicy,
    rng: random.Random,
    counts: dict[str, int],
) -> None:
    for _ in range(limit):
        rows = claim()
        if not rows:
            return
        with logs.correlated(rows[0].correlation_id):
            outcome, stop = _send_one(conn, client, rows[0], policy, rng)
        counts[outcome] += 1
        if stop:
            return


def _send_one(
    conn: "psycopg.Connection[Any]", client: TemplateSender, row: OutboxRow, policy: RetryPolicy, rng: random.Random
) -> tuple[Outcome, bool]:
    """Send one claimed row and record what happened; returns the outcome and whether to stop the batch.

    A row that does not fit its template (``chalicelib.message_templates``) fails
    without a send: WhatsApp would refuse it (132000, 132001) and count it against us.
    """
    components = row.payload.get("components", [])
    language = row.payload.get("language", DEFAULT_LANGUAGE)
    template = TEMPLATE_BY_NAME.get(row.template)
    problems = ["no such template"] if template is None else template.problems(components, language)
    if problems:
        error = f"does not fit template {row.template!r}: {'; '.join(problems)}"
        return _record(outbox.mark_failed(conn, row.id, row.attempts, error), row, Outcome.FAILED, None), False
    try:
        message_id = _timed_send(client, row, components, language)
    except WhatsAppRetryableError as error:
        stop = error.code not in PER_RECIPIENT_CODES
        text = error.describe(with_details=not row.sensitive)
        if row.attempts >= policy.max_attempts:
            text = f"gave up after {row.attempts} attempts: {text}"
            return _record(outbox.mark_failed(conn, row.id, row.attempts, text), row, Outcome.FAILED, error), stop
        delay = policy.delay_s(row.attempts, error.retry_after_s, rng)
        return _record(outbox.mark_retry(conn, row.id, row.attempts, delay, text), row, Outcome.RETRIED, error), stop
    except WhatsAppPermanentError as error:
        text = error.describe(with_details=not row.sensitive)
        return _record(outbox.mark_failed(conn, row.id, row.attempts, text), row, Outcome.FAILED, error), False
    except WhatsAppOutcomeUnknownError as error:
        text = error.describe(with_details=not row.sensitive)
        return _record(outbox.mark_unknown(conn, row.id, row.attempts, text), row, Outcome.UNKNOWN, error), True
    except Exception as error:
        # A fault of ours while sending: whether the message left is unknown, so it is not resent.
        logger.exception("outbox %s: unexpected error while sending", row.id)
        text = f"unexpected {type(error).__name__} while sending"
        return _record(outbox.mark_unknown(conn, row.id, row.attempts, text), row, Outcome.UNKNOWN, None), True
    return _record(outbox.mark_sent(conn, row.id, row.attempts, message_id), row, Outcome.SENT, None), False


def _timed_send(client: TemplateSender, row: OutboxRow, components: list[Any], language: str) -> str:
    """``client.send_template`` for ``row``, its duration counted as ``WhatsAppLatency`` whatever the answer."""
    started = time.perf_counter()
    try:
        return client.send_template(row.recipient, row.template, components=components, language=language)
    finally:
        emf.timing(LATENCY, (time.perf_counter() - started) * 1000)


def _record(recorded: bool, row: OutboxRow, outcome: Outcome, error: WhatsAppError | None) -> Outcome:
    emf.count(METRIC_BY_OUTCOME[outcome], by=row.template)
    code = error.code if error else None
    status = error.http_status if error else None
    if not recorded:
        logger.warning(
            "outbox %s (%s): outcome %s not recorded, the row changed meanwhile", row.id, row.template, outcome
        )
    elif outcome is Outcome.SENT:
        logger.info("outbox %s (%s): sent on attempt %s", row.id, row.template, row.attempts)
    else:
        kind = type(error).__name__ if error else "payload"
        logger.warning(
            "outbox %s (%s): %s on attempt %s, %s http=%s code=%s",
            *(row.id, row.template, outcome, row.attempts, kind, status, code),
        )
    return outcome


def _empty_counts() -> dict[str, int]:
    return {**{outcome.value: 0 for outcome in Outcome}, "expired": 0, "too_late": 0}
