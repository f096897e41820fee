"""The registration services: plain verbs that take a connection and return JSON-ready dicts."""

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from chalicelib.errors import (
    BadRequestError,
    ConflictError,
    DuplicateRegistrationError,
    IdempotencyKeyReusedError,
    NotFoundError,
    UnauthorizedError,
)
from chalicelib.jsontypes import Json
from chalicelib.platform import emf, logs
from chalicelib.registrations import otp, repository
from chalicelib.registrations.models import ListQuery, PackageIn, RegistrationIn
from chalicelib.staff import Role, Staff, require
from chalicelib.statuses import RegistrationStatus
from chalicelib.workflow import TRANSITION_BY_ACTION, Action, not_allowed
from chalicelib.workflow import parse_registration_id as parse_id

if TYPE_CHECKING:
    import psycopg


def list_packages(conn: "psycopg.Connection[Any]") -> list[Json]:
    """The active packages, cheapest first."""
    return repository.list_packages(conn)


def create_package(conn: "psycopg.Connection[Any]", staff: Staff, body: PackageIn) -> Json:
    """A new package (``admin`` only); raises ``ConflictError``-family on a duplicate name."""
    require(staff, [Role.ADMIN])
    package = repository.insert_package(conn, body.name, body.speed_mbps, body.monthly_price_idr)
    if package is None:
        raise ConflictError(f"a package named {body.name!r} exists", {"name": body.name})
    return package


@dataclass(frozen=True)
class Registered:
    """What ``register`` did: the HTTP status and body, and the outbox rows to send now."""

    status: int
    body: Json
    outbox_ids: list[UUID]


IDEMPOTENCY_SCOPE = "POST /registrations"
_KEY_HEADER = {"header": "Idempotency-Key"}
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def register(
    conn: "psycopg.Connection[Any]", body: RegistrationIn, otp_key: str | None, idempotency_key: str | None = None
) -> Registered:
    """A new registration in ``pending_verification``, with a one-time code on its way to the phone.

    With ``idempotency_key``, a repeat of the same body replays the first response and
    creates nothing; the key with another body raises ``IdempotencyKeyReusedError`` (422).
    Raises ``DuplicateRegistrationError`` (409, naming the existing one's status) when an
    active registration has the phone or e-mail, ``BadRequestError`` for an unknown package.
    """
    code = otp.new_code()
    registration_id = uuid4()
    fields = {
        **body.model_dump(),
        "id": registration_id,
        "otp_hash": otp.code_hash(otp_key, registration_id, code),
        "otp_valid_for": otp.VALID_FOR,
        "otp_template": otp.TEMPLATE,
        "otp_payload": otp.message_payload(code),
        "correlation_id": logs.correlation_id(),
    }
    try:
        if idempotency_key is None:
            created = repository.insert_registration(conn, fields)
        else:
            with conn.transaction():
                replay = _claim(conn, idempotency_key, body)
                if replay is not None:
                    return replay
                created = repository.insert_registration(conn, fields)
                if created is not None:
                    repository.store_idempotent_response(conn, IDEMPOTENCY_SCOPE, idempotency_key, 201, created[0])
    except repository.DuplicateActiveError:
        raise DuplicateRegistrationError(
            "an active registration already has this phone number or e-mail address",
            {"current_status": repository.active_status(conn, body.phone, body.email)},
        ) from None
    if created is None:
        raise BadRequestError("package_id names no active package", {"field": "package_id"})
    emf.count("RegistrationCreated")
    return Registered(201, created[0], [created[1]])


# A client retrying a POST does so within minutes; a day leaves room for long outages.
IDEMPOTENCY_KEPT_FOR = timedelta(hours=24)


def purge_idempotency_keys(conn: "psycopg.Connection[Any]") -> int:
    """Forget Idempotency-Keys older than ``IDEMPOTENCY_KEPT_FOR``; returns how many were forgotten."""
    return repository.purge_idempotency_keys(conn, IDEMPOTENCY_KEPT_FOR)


def _claim(conn: "psycopg.Connection[Any]", key: str, body: RegistrationIn) -> Registered | None:
    if not _IDEMPOTENCY_KEY.match(key):
        raise BadRequestError("Idempotency-Key must be 1 to 255 visible ASCII characters", _KEY_HEADER)
    digest = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    first = repository.claim_idempotency_key(conn, IDEMPOTENCY_SCOPE, key, digest)
    if first is None:
        return None
    first_digest, status, response = first
    if first_digest != digest:
        raise IdempotencyKeyReusedError("this Idempotency-Key was used with another body", _KEY_HEADER)
    return Registered(status, response, [])


def get_registration(conn: "psycopg.Connection[Any]", registration_id: str) -> Json:
    """One registration with its history, customer and ticket; raises ``NotFoundError``."""
    registration = repository.get_registration(conn, parse_id(registration_id))
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
        "require_feasible": action is Action.APPROVE,
        "actor": actor,
        "reason": getattr(body, "reason", None),
        "survey_scheduled_at": getattr(body, "scheduled_at", None),
        "surveyor": getattr(body, "surveyor", None),
        "survey_feasible": getattr(body, "feasible", None),
        "survey_notes": getattr(body, "notes", None) if action is Action.COMPLETE_SURVEY else None,
    }
    before, registration = repository.transition(conn, params)
    if before is None:
        raise NotFoundError("no such registration")
    if registration is None:
        raise not_allowed(action, RegistrationStatus(before))
    emf.count("TransitionApplied", by=action.value)
    return registration


def list_registrations(conn: "psycopg.Connection[Any]", staff: Staff, query: ListQuery) -> Json:
    """One page, newest first: ``{"items": [...], "next_cursor": str | None}``.

    The cursor is the last row's (created_at, id): pages stay as fast deep in the list
    as at its head, and rows created meanwhile neither repeat nor vanish.
    """
    require(staff, list(Role))
    after_created_at, after_id = _decode_cursor(query.cursor) if query.cursor else (None, None)
    rows = repository.list_registrations(
        conn,
        {
            "status": query.status.value if query.status else None,
            "city": query.city,
            "created_from": query.created_from,
            "created_to": query.created_to,
            "after_created_at": after_created_at,
            "after_id": after_id,
            "limit": query.limit + 1,
        },
    )
    page = rows[: query.limit]
    more = len(rows) > query.limit
    return {"items": page, "next_cursor": _encode_cursor(page[-1]) if more else None}


def _encode_cursor(last: Json) -> str:
    raw = json.dumps([last["created_at"], last["id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        created_at, registration_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created_at), UUID(registration_id)
    except (ValueError, TypeError) as error:
        raise BadRequestError("cursor is not one this API gave out", {"field": "cursor"}) from error
