"""The workflow actions of ``POST /registrations/{id}/{action}``: which body each takes, and who acts.

``create-customer`` is not here: it has its own route and feature (``chalicelib.customers``).
"""

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from chalicelib.errors import NotFoundError, UnauthorizedError
from chalicelib.jsontypes import Json
from chalicelib.registrations.models import CompleteSurveyIn, ReasonIn, ScheduleSurveyIn, VerifyIn
from chalicelib.registrations.service import act
from chalicelib.registrations.verification import verify_with_code
from chalicelib.staff import Staff, require
from chalicelib.workflow import TRANSITION_BY_ACTION, Action

if TYPE_CHECKING:
    import psycopg

# The body each action of this route takes (None: no body).
BODY_BY_ACTION: dict[Action, type[BaseModel] | None] = {
    Action.VERIFY: VerifyIn,
    Action.SCHEDULE_SURVEY: ScheduleSurveyIn,
    Action.COMPLETE_SURVEY: CompleteSurveyIn,
    Action.APPROVE: None,
    Action.REJECT: ReasonIn,
    Action.CANCEL: ReasonIn,
}
_ACTION_BY_SEGMENT = {action.value: action for action in BODY_BY_ACTION}


def parse_action(segment: str) -> tuple[Action, type[BaseModel] | None]:
    """The action a URL segment names, and the body model it takes; raises ``NotFoundError`` (404)."""
    action = _ACTION_BY_SEGMENT.get(segment)
    if action is None:
        raise NotFoundError(f"no action {segment!r}", {"actions": sorted(_ACTION_BY_SEGMENT)})
    return action, BODY_BY_ACTION[action]


def body_required(action: Action, staff: Staff | None) -> bool:
    """Whether ``action`` needs a body: staff verify without one, as they approve (the code is the
    registrant's way in); everything else with a body model needs its body."""
    return not (action is Action.VERIFY and staff is not None)


def authorize(action: Action, staff: Staff | None) -> None:
    """Who may try ``action``, before its body is read: the public only for ``verify`` (by code);
    else ``UnauthorizedError`` (401) without a token, ``ForbiddenError`` (403) for a role that may not."""
    if staff is None:
        if TRANSITION_BY_ACTION[action].public_with_code:
            return
        raise UnauthorizedError("a staff Bearer token is required")
    require(staff, TRANSITION_BY_ACTION[action].roles)


def perform(
    conn: "psycopg.Connection[Any]",
    registration_id: str,
    action: Action,
    staff: Staff | None,
    body: Any,
    otp_key: str | None,
) -> Json:
    """A workflow action: ``verify`` by the registrant's code when no staff token came with one,
    else ``service.act`` on behalf of ``staff`` (which refuses a missing token with 401)."""
    code = getattr(body, "code", None)
    if staff is None and action is Action.VERIFY and code is not None:
        return verify_with_code(conn, registration_id, code, otp_key)
    return act(conn, registration_id, action, staff, body)
