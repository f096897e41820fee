"""The personal-data verbs: ``export`` and ``erase`` (admin, on a person's request) and ``purge`` (daily).

What is kept, for how long, and who may read it: docs/api.md, "Personal data".
"""

import logging
import re
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.errors import CustomerDataKeptError, NotFoundError
from chalicelib.jsontypes import Json
from chalicelib.platform import emf, logs
from chalicelib.privacy import repository
from chalicelib.staff import Role, Staff, require
from chalicelib.statuses import RegistrationStatus
from chalicelib.workflow import parse_registration_id

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

# Export and erasure: admin only (checked by the web edge before it reads the body, and here).
PRIVACY_OFFICERS = frozenset({Role.ADMIN})
# Registrations that ended without becoming a customer.  Never verified ones are cancelled by
# the daily expiry after a day; one still pending here is erased (and cancelled) all the same.
PURGEABLE = [
    RegistrationStatus.CANCELLED.value,
    RegistrationStatus.REJECTED.value,
    RegistrationStatus.PENDING_VERIFICATION.value,
]
# On request: any registration but a customer's (an active one is cancelled as it is erased).
ERASABLE = [s.value for s in RegistrationStatus if s is not RegistrationStatus.CUSTOMER_CREATED]
RETENTION_ACTOR = "retention"
METRIC = "PersonalDataPurged"


def export(conn: "psycopg.Connection[Any]", staff: Staff, registration_id: str) -> Json:
    """Everything held about the registration's person: the registration, its history, the messages
    sent to them, the customer and ticket if any, and their other registrations (same phone or
    e-mail).  Raises ``ForbiddenError`` unless admin, ``NotFoundError`` for an unknown registration."""
    require(staff, PRIVACY_OFFICERS)
    document = repository.export(conn, parse_registration_id(registration_id))
    if document is None:
        raise NotFoundError("no such registration")
    return document


def erase(conn: "psycopg.Connection[Any]", staff: Staff, registration_id: str, reason: str) -> Json:
    """Erase the registration's personal data now, recording who, when and why (the reason without
    the person's own details).  The same answer when it was erased before.

    Raises ``ForbiddenError`` unless admin, ``NotFoundError``, and ``CustomerDataKeptError`` (409)
    for a registration that became a customer.
    """
    require(staff, PRIVACY_OFFICERS)
    uid = parse_registration_id(registration_id)
    with conn.transaction():
        found = repository.lock(conn, uid)
        if found is None:
            raise NotFoundError("no such registration")
        status, details, erased_at = found
        if status == RegistrationStatus.CUSTOMER_CREATED.value:
            raise CustomerDataKeptError(
                "this registration became a customer: the contract and the law require keeping a customer's data, "
                "so it is not erased",
                {"current_status": status},
            )
        if erased_at is None:
            repository.erase(conn, [uid], ERASABLE, staff.username, scrub(reason, details))
            emf.count(METRIC)
    log.info("personal data erased on request", extra={"registration_id": str(uid), "erased_by": staff.username})
    return answer(conn, uid)


def answer(conn: "psycopg.Connection[Any]", registration_id: Any) -> Json:
    """What an erasure answers, the first time and every time after: the id, status and when."""
    found = repository.lock(conn, registration_id)
    if found is None:
        raise NotFoundError("no such registration")
    erased_at = found[2]
    return {"id": str(registration_id), "status": found[0], "erased_at": erased_at and erased_at.isoformat()}


def purge(
    conn: "psycopg.Connection[Any]",
    kept_for: timedelta,
    *,
    batch_size: int = 200,
    time_budget_s: float = 40.0,
) -> dict[str, int]:
    """The daily purge: erase registrations that ended without becoming a customer once their last
    status change is older than ``kept_for``, and delete outbox rows of that age.

    Batched (one statement each, so each batch commits alone) and bounded: it stops when
    ``time_budget_s`` is spent, and the next run goes on where it stopped; running it again
    erases nothing twice.  Returns counts (and logs them: counts only).
    """
    deadline = time.monotonic() + time_budget_s
    counts = {"registrations_erased": 0, "outbox_rows_deleted": 0, "batches": 0, "complete": 1}
    reason = f"retention: ended without becoming a customer more than {kept_for.days} days ago"
    while True:
        if time.monotonic() > deadline:
            counts["complete"] = 0
            break
        ids = repository.expired(conn, PURGEABLE, kept_for, batch_size)
        if not ids:
            break
        erased = repository.erase(conn, ids, PURGEABLE, RETENTION_ACTOR, reason)
        counts["registrations_erased"] += erased
        counts["batches"] += 1
        if erased == 0:  # what was found changed meanwhile; the next run sees it as it is
            break
    while counts["complete"]:
        if time.monotonic() > deadline:
            counts["complete"] = 0
            break
        deleted = repository.purge_outbox(conn, kept_for, batch_size)
        counts["outbox_rows_deleted"] += deleted
        counts["batches"] += 1
        if deleted < batch_size:
            break
    emf.count(METRIC, counts["registrations_erased"])
    emf.count("OutboxRowsPurged", counts["outbox_rows_deleted"])
    log.info("personal data purge", extra=counts)
    return counts


def scrub(text: str, details: list[str]) -> str:
    """``text`` without the person's own name (and each part of it), e-mail, phone and address,
    and with any phone number or e-mail address masked: what an erasure record may keep."""
    words = [d for d in details if d] + [part for part in details[0].split() if len(part) >= 3]
    for word in sorted(set(words), key=len, reverse=True):
        text = re.sub(re.escape(word), repository.ERASED, text, flags=re.IGNORECASE)
    return logs.mask(text)
