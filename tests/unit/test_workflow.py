"""The transition table, and the README's diagram derived from it."""

import re
from pathlib import Path

from chalicelib.staff import Role
from chalicelib.statuses import ACTIVE_STATUSES, TERMINAL_STATUSES, RegistrationStatus
from chalicelib.workflow import TRANSITIONS, Action, allowed_actions, mermaid_diagram, reachable_statuses

README = Path(__file__).resolve().parents[2] / "README.md"

PINNED_STATUSES = [
    "pending_verification",
    "verified",
    "survey_scheduled",
    "survey_completed",
    "approved",
    "customer_created",
    "rejected",
    "cancelled",
]


def test_statuses_are_the_pinned_ones() -> None:
    assert [s.value for s in RegistrationStatus] == PINNED_STATUSES


def test_every_status_is_reachable_and_every_action_has_one_row() -> None:
    assert reachable_statuses() == frozenset(RegistrationStatus)
    assert len({t.action for t in TRANSITIONS}) == len(TRANSITIONS) == len(Action)


def test_terminal_statuses_have_no_way_out() -> None:
    for status in TERMINAL_STATUSES:
        assert allowed_actions(status) == []
    for status in ACTIVE_STATUSES:
        assert Action.CANCEL in allowed_actions(status)
        assert Action.REJECT in allowed_actions(status)


def test_admin_may_do_what_any_staff_may() -> None:
    for transition in TRANSITIONS:
        if transition.roles:
            assert Role.ADMIN in transition.roles


def test_only_the_worker_creates_customers() -> None:
    writers = [t for t in TRANSITIONS if t.target is RegistrationStatus.CUSTOMER_CREATED]
    assert [(t.worker_only, t.roles) for t in writers] == [(True, frozenset())]


def test_readme_diagram_is_the_one_the_code_derives() -> None:
    match = re.search(r"```mermaid\n(.*?)```", README.read_text(), re.DOTALL)
    assert match is not None, "README.md has no mermaid block"
    assert match.group(1) == mermaid_diagram(), "run `make readme-diagram` and commit README.md"
