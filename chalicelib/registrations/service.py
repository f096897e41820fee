"""The registration services: plain verbs that take a connection and return JSON-ready dicts."""

import base64
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from chalicelib.errors import (
    AppError,
    BadRequestError,
    DuplicatePackageError,
    DuplicateRegistrationError,
    IdempotencyKeyReusedError,
    NotFoundError,
    TooManyRequestsError,
    UnauthorizedError,
    problem,
)
from chalicelib.jsontypes import Json
from chalicelib.message_templates import REGISTRATION_STATUS
from chalicelib.platform import emf, logs
from chalicelib.registrations import otp, repository, search
from chalicelib.staff import Role, Staff, require
from chalicelib.statuses import RegistrationStatus
from chalicelib.workflow import TRANSITION_BY_ACTION, Action, not_allowed
from chalicelib.workflow import parse_registration_id as parse_id

if TYPE_CHECKING:
    import psycopg

    # Annotations only: the models (pydantic classes built at import) are imported by the
    # routes that read a body or a query, not by every cold start that imports this module.
    from chalicelib.registrations.models import ListQuery, PackageIn, RegistrationIn

logger = logging.getLogger(__name__)


def list_packages(conn: "psycopg.Connection[Any]") -> list[Json]:
    """The active packages, cheapest first."""
    return repository.list_packages(conn)


# Who may create packages, and who may read registrations (checked by the web edge before it
# reads the request's input, and again here).
PACKAGE_CREATORS = frozenset({Role.ADMIN})
READERS = frozenset(Role)


def create_package(conn: "psycopg.Connection[Any]", staff: Staff, body: "PackageIn") -> Json:
    """A new package (``admin`` only); raises ``DuplicatePackageError`` (409) for a name in use."""
    require(staff, PACKAGE_CREATORS)
    package = repository.insert_package(conn, body.name, body.speed_mbps, body.monthly_price_idr)
    if package is None:
        raise DuplicatePackageError(f"a package named {body.name!r} exists (in some letter case)")
    return package


@dataclass(frozen=True)
class Registered:
    """What ``register`` did: the HTTP status and body, the outbox rows to send now, and the error
    to answer with once they are sent (a refused duplicate)."""

    status: int
    body: Json
    outbox_ids: list[UUID]
    refusal: AppError | None = None


IDEMPOTENCY_SCOPE = "POST /registrations"
_KEY_HEADER = "Idempotency-Key"
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
# Past this, a registration that was never verified stops holding its phone and e-mail.
STALE_REASON = "not verified in time: the phone number and e-mail address are free again"


def register(
    conn: "psycopg.Connection[Any]",
    body: "RegistrationIn",
    otp_key: str | None,
    idempotency_key: str | None = None,
    *,
    budget: otp.SendBudget,
    stale_after: timedelta,
) -> Registered:
    """A new registration in ``pending_verification``, with a one-time code on its way to the phone.

    The code counts against ``budget``: past the client's hourly limit or everyone's
    daily one, ``TooManyRequestsError`` (429, ``Retry-After``) and nothing is created or
    sent.  A registration with the same phone or e-mail that was never verified within
    ``stale_after`` is cancelled by the same statement (with a history row), so that it
    no longer blocks this one.  With ``idempotency_key`` (bound to the phone: another
    person's key is another key), a repeat of the same body replays the first response
    and creates nothing; the key with another body raises ``IdempotencyKeyReusedError``
    (422); a request that fails leaves no key behind.  When an active registration has the
    phone or e-mail, nothing is created: the result carries ``refusal``
    (``DuplicateRegistrationError``, 409) to raise once its outbox rows (the message to that
    registration's phone) are sent.  Raises ``BadRequestError`` for an unknown package.
    """
    code = otp.new_code()
    registration_id = uuid4()
    fields = {
        **body.model_dump(),
        **budget.params(),
        "id": registration_id,
        "otp_hash": otp.code_hash(otp_key, registration_id, code),
        "otp_valid_for": otp.VALID_FOR,
        "otp_template": otp.TEMPLATE,
        "otp_payload": otp.message_payload(code),
        "stale_after": stale_after,
        "stale_reason": STALE_REASON,
        "correlation_id": logs.correlation_id(),
    }
    try:
        if idempotency_key is None:
            created = _insert(conn, fields, budget)
        else:
            # Any error raised in here rolls the claimed key back with everything else.
            with conn.transaction():
                replay = _claim(conn, idempotency_key, body)
                if replay is not None:
                    return replay
                created = _insert(conn, fields, budget)
                repository.store_idempotent_response(conn, _scope(body), idempotency_key, 201, created.body)
    except repository.DuplicateActiveError:
        return _refuse_duplicate(conn, body)
    return created


def _insert(conn: "psycopg.Connection[Any]", fields: Json, budget: otp.SendBudget) -> Registered:
    registration, outbox_id, package_found, count = repository.insert_registration(conn, fields)
    if not package_found:
        raise BadRequestError(
            "the request body is not valid",
            {"problems": [problem("body", "package_id", "names no active package")]},
        )
    if registration is None or outbox_id is None:
        raise budget_refusal(count)
    record_budget_use(count, budget)
    emf.count("RegistrationCreated")
    return Registered(201, registration, [outbox_id])


def budget_refusal(count: "repository.SendCount") -> TooManyRequestsError:
    """The 429 for a code the budgets refused, with the wait until the refusing window ends."""
    emf.count("OtpSendRefused")
    if count.client_refused:
        return TooManyRequestsError(
            "too many codes were asked for from this address; try again later", retry_after_s=count.client_wait_s
        )
    logger.warning("the daily budget of one-time codes is spent: no more codes until the next UTC day")
    return TooManyRequestsError("no more codes can be sent today; try again later", retry_after_s=count.day_wait_s)


def record_budget_use(count: "repository.SendCount", budget: otp.SendBudget) -> None:
    """Log how much of the day's budget is spent (``OtpBudgetUsedPercent``: an alarm watches it)."""
    if count.sent_today is not None and budget.per_day > 0:
        used = round(100 * count.sent_today / budget.per_day, 2)
        emf.gauge("OtpBudgetUsedPercent", used, "Percent")


# The message that tells a registrant where their registration stands, when someone (maybe they)
# tries to register again with its phone or e-mail; as often as a one-time code, at most.
STATUS_TEMPLATE = REGISTRATION_STATUS.name


def _refuse_duplicate(conn: "psycopg.Connection[Any]", body: "RegistrationIn") -> Registered:
    """The public 409 names no status and no field, whichever of the two is taken and whatever the
    registration's status: the caller may not be the registrant.  The registrant learns the rest on
    their own phone (a WhatsApp message with the registration's id and status)."""
    told = repository.tell_owners(conn, body.phone, body.email, STATUS_TEMPLATE, otp.RESEND_AFTER, otp.MAX_CODES)
    refusal = DuplicateRegistrationError(
        "these details cannot be used for a new registration now; if you registered before, "
        "a WhatsApp message to your phone says where your registration stands"
    )
    return Registered(409, {}, told, refusal)


# A client retrying a POST does so within minutes; a day leaves room for long outages.
IDEMPOTENCY_KEPT_FOR = timedelta(hours=24)
# Send counters are needed for their window (an hour, a day); two days leave room.
SEND_COUNTS_KEPT_FOR = timedelta(days=2)


def purge_idempotency_keys(conn: "psycopg.Connection[Any]") -> int:
    """Forget Idempotency-Keys older than ``IDEMPOTENCY_KEPT_FOR``; returns how many were forgotten."""
    return repository.purge_idempotency_keys(conn, IDEMPOTENCY_KEPT_FOR)


def expire_unverified(conn: "psycopg.Connection[Any]", stale_after: timedelta) -> dict[str, int]:
    """The daily sweep: registrations never verified within ``stale_after`` become ``cancelled``
    (history rows saying why), and past OTP send counters are forgotten; how many of each."""
    expired = repository.expire_unverified(conn, stale_after, STALE_REASON)
    return {"expired": expired, "send_counts_forgotten": repository.forget_send_counts(conn, SEND_COUNTS_KEPT_FOR)}


def _scope(body: "RegistrationIn") -> str:
    # Bound to the caller: the normalised phone (hashed: the key table need not hold it).
    return f"{IDEMPOTENCY_SCOPE} {hashlib.sha256(body.phone.encode()).hexdigest()[:32]}"


def _claim(conn: "psycopg.Connection[Any]", key: str, body: "RegistrationIn") -> Registered | None:
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise BadRequestError(
            "a header is not valid",
            {"problems": [problem("header", _KEY_HEADER, "must be 1 to 255 visible ASCII characters")]},
        )
    digest = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    first = repository.claim_idempotency_key(conn, _scope(body), key, digest)
    if first is None:
        return None
    first_digest, status, response = first
    if first_digest != digest:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was used with another body",
            {"problems": [problem("header", _KEY_HEADER, "was used with another body")]},
        )
    return Registered(status, response, [])


def get_registration(conn: "psycopg.Connection[Any]", staff: Staff, registration_id: str) -> Json:
    """One registration with its history, customer and ticket; raises ``NotFoundError`` (also, for a
    surveyor, when its survey is assigned to someone else: whether it exists is not theirs to know)."""
    require(staff, READERS)
    registration = repository.get_registration(conn, parse_id(registration_id), staff.assigned_only())
    if registration is None:
        raise NotFoundError("no such registration")
    return registration


def act(conn: "psycopg.Connection[Any]", registration_id: str, action: Action, staff: Staff | None, body: Any) -> Json:
    """Move a registration by ``action`` on behalf of ``staff``, as the transition table allows.

    Raises ``UnauthorizedError``/``ForbiddenError`` for the wrong caller, and what ``move`` raises.
    """
    if staff is None:
        raise UnauthorizedError("a staff Bearer token is required")
    require(staff, TRANSITION_BY_ACTION[action].roles)
    return move(conn, parse_id(registration_id), action, staff.username, body)


def move(conn: "psycopg.Connection[Any]", registration_id: UUID, action: Action, actor: str, body: Any) -> Json:
    """One conditional UPDATE and its history row; the caller has checked who may.

    Raises ``NotFoundError``, and ``TransitionNotAllowedError`` (409, with the current
    status and the actions allowed from it) when the status does not allow the move;
    nothing changes then.
    """
    transition = TRANSITION_BY_ACTION[action]
    params: Json = {
        "id": registration_id,
        "action": action.value,
        "to_status": transition.target.value,
        "from_statuses": [s.value for s in transition.sources],
        "require_feasible": transition.requires_feasible_survey,
        "actor": actor,
        "reason": getattr(body, "reason", None),
        "survey_scheduled_at": getattr(body, "scheduled_at", None),
        "surveyor": getattr(body, "surveyor", None),
        "survey_feasible": getattr(body, "feasible", None),
        "survey_notes": getattr(body, "notes", None) if action is Action.COMPLETE_SURVEY else None,
    }
    before, feasible, registration = repository.transition(conn, params)
    if before is None:
        raise NotFoundError("no such registration")
    if registration is None:
        raise not_allowed(action, RegistrationStatus(before), feasible)
    emf.count("TransitionApplied", by=action.value)
    return registration


@dataclass(frozen=True)
class Page:
    """One page of ``list_registrations``: the JSON text, and the ids of the registrations in it."""

    body: str
    ids: list[str]


def list_registrations(conn: "psycopg.Connection[Any]", staff: Staff, query: "ListQuery") -> Page:
    """One page, newest first, as JSON text: ``{"items": [...], "next_cursor": str | None}``.
    A surveyor's holds only the registrations whose survey is assigned to them.

    The rows are the JSON PostgreSQL built, passed on without decoding them.  The
    cursor is the last row's (created_at, id): pages stay as fast deep in the list
    as at its head, and rows created meanwhile neither repeat nor vanish.
    """
    require(staff, READERS)
    after_created_at, after_id = _decode_cursor(query.cursor) if query.cursor else (None, None)
    found = _search(query.q)
    rows = repository.list_registrations(
        conn,
        {
            "q": found.value if found else None,
            "status": query.status.value if query.status else None,
            "city": query.city,
            "created_from": query.created_from,
            "created_to": query.created_to,
            "after_created_at": after_created_at,
            "after_id": after_id,
            "limit": query.limit + 1,
            "assigned_to": staff.assigned_only(),
        },
        found.kind.value if found else None,
    )
    page = [row[0] for row in rows[: query.limit]]
    next_cursor = _encode_cursor(json.loads(page[-1])) if len(rows) > query.limit else None
    body = f'{{"items":[{",".join(page)}],"next_cursor":{json.dumps(next_cursor)}}}'
    return Page(body, [row[1] for row in rows[: query.limit]])


def _search(q: str | None) -> "search.Search | None":
    if q is None:
        return None
    try:
        return search.parse(q)
    except ValueError as error:
        raise BadRequestError(
            "a query parameter is not valid", {"problems": [problem("query", "q", str(error))]}
        ) from None


def _encode_cursor(last: Json) -> str:
    raw = json.dumps([last["created_at"], last["id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        created_at, registration_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created_at), UUID(registration_id)
    except (ValueError, TypeError) as error:
        raise BadRequestError(
            "a query parameter is not valid", {"problems": [problem("query", "cursor", "is not one this API gave out")]}
        ) from error
