"""The registration workflow as plain data: which action moves which status where.

The HTTP API's allowed actions, the README's state diagram and the tests' role x
action matrix are all read from ``TRANSITIONS``; nothing else spells them.
Run ``python -m chalicelib.workflow`` to print the Mermaid diagram.
"""

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from chalicelib.errors import NotFoundError, TransitionNotAllowedError
from chalicelib.staff import Role
from chalicelib.statuses import ACTIVE_STATUSES, INITIAL_STATUS, TERMINAL_STATUSES, RegistrationStatus

S = RegistrationStatus


class Action(StrEnum):
    """A workflow action; the value is its URL segment (pinned)."""

    VERIFY = "verify"
    SCHEDULE_SURVEY = "schedule-survey"
    COMPLETE_SURVEY = "complete-survey"
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    CREATE_CUSTOMER = "create-customer"


@dataclass(frozen=True)
class Transition:
    """One move of the workflow.

    ``roles`` may perform it (``admin`` may do all that staff may);
    ``public_with_code`` lets the registrant do it with the OTP code;
    ``worker_only`` means only the SQS worker writes it.
    """

    action: Action
    sources: frozenset[RegistrationStatus]
    target: RegistrationStatus
    roles: frozenset[Role]
    public_with_code: bool = False
    worker_only: bool = False


def _roles(*roles: Role) -> frozenset[Role]:
    return frozenset({*roles, Role.ADMIN})


TRANSITIONS: tuple[Transition, ...] = (
    Transition(Action.VERIFY, frozenset({S.PENDING_VERIFICATION}), S.VERIFIED, _roles(Role.CS), public_with_code=True),
    Transition(
        Action.SCHEDULE_SURVEY,
        frozenset({S.VERIFIED, S.SURVEY_SCHEDULED}),
        S.SURVEY_SCHEDULED,
        _roles(Role.CS),
    ),
    Transition(Action.COMPLETE_SURVEY, frozenset({S.SURVEY_SCHEDULED}), S.SURVEY_COMPLETED, _roles(Role.SURVEYOR)),
    # A survey found not feasible is closed with reject; approve answers 409 then.
    Transition(Action.APPROVE, frozenset({S.SURVEY_COMPLETED}), S.APPROVED, _roles(Role.APPROVER)),
    Transition(Action.REJECT, ACTIVE_STATUSES, S.REJECTED, _roles(Role.CS, Role.APPROVER)),
    Transition(Action.CANCEL, ACTIVE_STATUSES, S.CANCELLED, _roles(Role.CS)),
    Transition(Action.CREATE_CUSTOMER, frozenset({S.APPROVED}), S.CUSTOMER_CREATED, frozenset(), worker_only=True),
)

TRANSITION_BY_ACTION: dict[Action, Transition] = {t.action: t for t in TRANSITIONS}


def allowed_actions(status: RegistrationStatus) -> list[Action]:
    """The actions that may start from ``status``, in table order."""
    return [t.action for t in TRANSITIONS if status in t.sources]


def not_allowed(action: Action, status: RegistrationStatus) -> TransitionNotAllowedError:
    """The 409 for ``action`` tried from ``status``: it names the current status and what is allowed from it."""
    return TransitionNotAllowedError(
        f"{action} is not allowed from {status}"
        + (" (the survey found the address not feasible: reject it)" if _unfeasible(action, status) else ""),
        {"current_status": status.value, "allowed_actions": [a.value for a in allowed_actions(status)]},
    )


def _unfeasible(action: Action, status: RegistrationStatus) -> bool:
    return action is Action.APPROVE and status is RegistrationStatus.SURVEY_COMPLETED


def parse_registration_id(value: str) -> UUID:
    """A registration id from a URL; anything else is no registration (``NotFoundError``, 404)."""
    try:
        return UUID(value)
    except ValueError:
        raise NotFoundError("no such registration") from None


def reachable_statuses() -> frozenset[RegistrationStatus]:
    """Every status the code can write: the initial one and every target."""
    return frozenset({INITIAL_STATUS, *(t.target for t in TRANSITIONS)})


def mermaid_diagram() -> str:
    """The state diagram as Mermaid ``stateDiagram-v2`` source, derived from ``TRANSITIONS``."""
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL_STATUS}"]
    order = list(RegistrationStatus)
    for transition in TRANSITIONS:
        who: list[str] = ["worker"] if transition.worker_only else sorted(transition.roles)
        if transition.public_with_code:
            who.insert(0, "registrant with code")
        label = f"{transition.action} ({', '.join(who)})"
        for source in sorted(transition.sources, key=order.index):
            lines.append(f"    {source} --> {transition.target}: {label}")
    for status in sorted(TERMINAL_STATUSES, key=order.index):
        lines.append(f"    {status} --> [*]")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(mermaid_diagram(), end="")
