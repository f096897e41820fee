"""Verification by the registrant's one-time code, and sending a new code."""

from typing import TYPE_CHECKING, Any, NoReturn
from uuid import UUID

from chalicelib.errors import (
    InvalidCodeError,
    NotAwaitingCodeError,
    NotFoundError,
    TooManyRequestsError,
)
from chalicelib.jsontypes import Json
from chalicelib.platform import logs
from chalicelib.registrations import otp, repository
from chalicelib.registrations.service import move
from chalicelib.statuses import RegistrationStatus
from chalicelib.workflow import Action, not_allowed
from chalicelib.workflow import parse_registration_id as parse_id

if TYPE_CHECKING:
    import psycopg


def verify_with_code(conn: "psycopg.Connection[Any]", registration_id: str, code: str, otp_key: str | None) -> Json:
    """``pending_verification`` -> ``verified`` when ``code`` is the registration's current code.

    Raises ``InvalidCodeError`` (400; a wrong code counts against the 5 tries, an expired
    one does not), ``TooManyRequestsError`` (429) once 5 wrong codes were tried, until a
    new code is sent; ``NotFoundError``; ``TransitionNotAllowedError`` when not pending.
    """
    rid = parse_id(registration_id)
    # The code's row stays locked from the check to the count or the move, so that
    # concurrent guesses are counted one by one.  Refusals are raised after the
    # transaction, so that the count of a wrong guess is committed.
    with conn.transaction():
        locked = repository.lock_otp(conn, rid)
        if locked is None:
            _refuse_without_code(conn, rid)
        stored, expired, failed = locked
        if failed >= otp.MAX_FAILED_ATTEMPTS:
            refusal: Exception = TooManyRequestsError(
                f"{otp.MAX_FAILED_ATTEMPTS} wrong codes were tried; ask for a new code", {"resend": True}
            )
        elif expired:
            refusal = InvalidCodeError("the code has expired; ask for a new code", {"expired": True})
        elif not otp.matches(stored, otp_key, rid, code):
            left = otp.MAX_FAILED_ATTEMPTS - repository.count_failed_attempt(conn, rid)
            refusal = InvalidCodeError("the code is not right", {"attempts_left": max(left, 0)})
        else:
            registration = move(conn, rid, Action.VERIFY, "registrant", None)
            repository.delete_otp(conn, rid)
            return registration
    raise refusal


def _refuse_without_code(conn: "psycopg.Connection[Any]", rid: UUID) -> NoReturn:
    registration = repository.get_registration(conn, rid)
    if registration is None:
        raise NotFoundError("no such registration")
    status = RegistrationStatus(registration["status"])
    if status is not RegistrationStatus.PENDING_VERIFICATION:
        raise not_allowed(Action.VERIFY, status, registration["survey_feasible"])
    raise InvalidCodeError("no code is outstanding; ask for a new code", {"resend": True})


def resend_code(
    conn: "psycopg.Connection[Any]", registration_id: str, otp_key: str | None, budget: otp.SendBudget
) -> tuple[Json, list[UUID]]:
    """A new code replaces the old one and goes out on WhatsApp: (body, outbox ids to send).

    Once a minute at most (429 with ``Retry-After``), at most 5 codes per registration
    (429), only while the registration waits for verification (409), and within
    ``budget`` (429 with ``Retry-After``; the code counts there as a new registration's does).
    """
    from chalicelib.registrations.service import budget_refusal, record_budget_use

    rid = parse_id(registration_id)
    code = otp.new_code()
    row = repository.resend_code(
        conn,
        {
            **budget.params(),
            "id": rid,
            "otp_hash": otp.code_hash(otp_key, rid, code),
            "otp_valid_for": otp.VALID_FOR,
            "otp_template": otp.TEMPLATE,
            "otp_payload": otp.message_payload(code),
            "resend_after": otp.RESEND_AFTER,
            "max_codes": otp.MAX_CODES,
            "pending": RegistrationStatus.PENDING_VERIFICATION.value,
            "correlation_id": logs.correlation_id(),
        },
    )
    if row is None:
        raise NotFoundError("no such registration")
    status, outbox_id, codes_sent, wait_s, eligible, count = row
    if outbox_id is not None:
        record_budget_use(count, budget)
        body = {"registration_id": str(rid), "expires_in_s": int(otp.VALID_FOR.total_seconds())}
        return body, [outbox_id]
    if status != RegistrationStatus.PENDING_VERIFICATION:
        raise NotAwaitingCodeError("the registration is not waiting for a code", {"current_status": status})
    if codes_sent is None or codes_sent >= otp.MAX_CODES:
        raise TooManyRequestsError("no more codes can be sent for this registration; staff can verify it")
    if eligible and count.sent_today is None:
        raise budget_refusal(count)
    raise TooManyRequestsError("a code was sent less than a minute ago", retry_after_s=max(wait_s or 1, 1))
