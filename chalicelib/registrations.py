"""The registration services: plain verbs that take a connection and return JSON-ready dicts."""

import base64
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import BaseModel

from chalicelib import repository
from chalicelib.auth import Staff, require
from chalicelib.errors import (
    BadRequestError,
    ConflictError,
    DuplicateRegistrationError,
    NotFoundError,
    TransitionNotAllowedError,
    UnauthorizedError,
)
from chalicelib.models import (
    CompleteSurveyIn,
    ListQuery,
    PackageIn,
    ReasonIn,
    RegistrationIn,
    ScheduleSurveyIn,
    VerifyIn,
)
from chalicelib.statuses import RegistrationStatus
from chalicelib.workflow import TRANSITION_BY_ACTION, Action, Role, allowed_actions

if TYPE_CHECKING:
    import psycopg

Json = dict[str, Any]


# The body each staff action takes (None: no body).
BODY_BY_ACTION: dict[Action, type[BaseModel] | None] = {
    Action.VERIFY: VerifyIn,
    Action.SCHEDULE_SURVEY: ScheduleSurveyIn,
    Action.COMPLETE_SURVEY: CompleteSurveyIn,
    Action.APPROVE: None,
    Action.REJECT: ReasonIn,
    Action.CANCEL: ReasonIn,
}


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


def register(conn: "psycopg.Connection[Any]", body: RegistrationIn) -> Json:
    """A new registration in ``pending_verification``.

    Raises ``DuplicateRegistrationError`` (409, naming the existing one's status) when an
    active registration has the phone or e-mail, ``BadRequestError`` for an unknown package.
    """
    try:
        registration = repository.insert_registration(conn, body.model_dump())
    except repository.DuplicateActiveError as duplicate:
        raise DuplicateRegistrationError(
            "an active registration already has this phone number or e-mail address",
            {"current_status": duplicate.existing_status},
        ) from None
    if registration is None:
        raise BadRequestError("package_id names no active package", {"field": "package_id"})
    return registration


def get_registration(conn: "psycopg.Connection[Any]", registration_id: str) -> Json:
    """One registration with its history, customer and ticket; raises ``NotFoundError``."""
    registration = repository.get_registration(conn, _uuid(registration_id))
    if registration is None:
        raise NotFoundError("no such registration")
    return registration


def act(conn: "psycopg.Connection[Any]", registration_id: str, action: Action, staff: Staff | None, body: Any) -> Json:
    """Move a registration by ``action``, as the transition table allows.

    Raises ``UnauthorizedError``/``ForbiddenError`` for the wrong caller, ``NotFoundError``,
    and ``TransitionNotAllowedError`` (409, with the current status and the actions
    allowed from it) when the status does not allow the move; nothing changes then.
    """
    transition = TRANSITION_BY_ACTION[action]
    if staff is None:
        # Verification by the registrant's OTP code arrives with the OTP work.
        raise UnauthorizedError("a staff Bearer token is required")
    require(staff, transition.roles)
    params: Json = {
        "id": _uuid(registration_id),
        "action": action.value,
        "to_status": transition.target.value,
        "from_statuses": [s.value for s in transition.sources],
        "require_feasible": action is Action.APPROVE,
        "actor": staff.username,
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
        status = RegistrationStatus(before)
        raise TransitionNotAllowedError(
            f"{action} is not allowed from {status}"
            + (" (the survey found the address not feasible: reject it)" if _unfeasible(action, status) else ""),
            {"current_status": status.value, "allowed_actions": [a.value for a in allowed_actions(status)]},
        )
    return registration


def _unfeasible(action: Action, status: RegistrationStatus) -> bool:
    return action is Action.APPROVE and status is RegistrationStatus.SURVEY_COMPLETED


def _uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise NotFoundError("no such registration") from None


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
