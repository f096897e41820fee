"""One rule, one place: the 409's allowed_actions and the decision agree; who may act is checked
before the body is read; a survey is scheduled in the future, 90 days ahead at most; token errors
say what is wrong in words."""

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from chalice.test import Client

from chalicelib.registrations.models import MAX_SURVEY_AHEAD
from chalicelib.statuses import RegistrationStatus
from chalicelib.workflow import TRANSITIONS, Action, allowed_actions, permits
from tests.support.api import SECRET, force_status, post, register, token


@pytest.mark.parametrize("feasible", [True, False])
def test_allowed_actions_list_exactly_what_the_decision_permits(
    api_client: Client, package: dict[str, Any], migrated_db: str, feasible: bool
) -> None:
    registration = register(api_client, package)
    force_status(migrated_db, registration["id"], "survey_completed", feasible=feasible)
    # Any refused action shows the list: cancel from survey_completed is allowed, so try complete-survey.
    refused = post(
        api_client,
        f"/registrations/{registration['id']}/complete-survey",
        {"feasible": True, "notes": ""},
        token("admin"),
    )
    assert refused.status_code == 409
    listed = refused.json_body["error"]["details"]["allowed_actions"]
    assert ("approve" in listed) is feasible
    approve = post(api_client, f"/registrations/{registration['id']}/approve", None, token("approver"))
    assert (approve.status_code == 200) is feasible, approve.json_body
    if not feasible:
        assert "not feasible: reject it" in approve.json_body["error"]["message"]
        assert "approve" not in approve.json_body["error"]["details"]["allowed_actions"]


def test_the_predicate_is_the_table() -> None:
    for transition in TRANSITIONS:
        for status in RegistrationStatus:
            for feasible in (None, False, True):
                expected = status in transition.sources and (
                    feasible is True or transition.action is not Action.APPROVE
                )
                assert permits(transition, status, feasible) is expected
    assert Action.APPROVE not in allowed_actions(RegistrationStatus.SURVEY_COMPLETED, False)
    assert Action.APPROVE in allowed_actions(RegistrationStatus.SURVEY_COMPLETED, True)


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("post", "/registrations/{id}/verify", token("surveyor"), 403),  # staff verify: cs only
        ("post", "/registrations/{id}/schedule-survey", {}, 401),
        ("post", "/registrations/{id}/schedule-survey", token("surveyor"), 403),
        ("post", "/registrations/{id}/reject", token("surveyor"), 403),
        ("post", "/packages", token("cs"), 403),
        ("post", "/packages", {}, 401),
        ("get", "/registrations?limit=500", token(), 403),  # a valid token without a staff role
        ("get", "/registrations/{id}", token(), 403),
    ],
)
def test_who_may_is_checked_before_the_input(
    api_client: Client, package: dict[str, Any], method: str, path: str, headers: dict[str, str], status: int
) -> None:
    registration = register(api_client, package)
    url = path.replace("{id}", registration["id"])
    response = getattr(api_client.http, method)(url, body=b"", headers={"Content-Type": "application/json", **headers})
    assert response.status_code == status, response.json_body


@pytest.mark.parametrize(
    ("when", "problem"),
    [
        (datetime(2020, 1, 6, 3, 0, tzinfo=UTC), "must be in the future"),
        (datetime.now(UTC) - timedelta(minutes=1), "must be in the future"),
        (datetime.now(UTC) + MAX_SURVEY_AHEAD + timedelta(hours=1), "must be within 90 days from now"),
    ],
)
def test_a_survey_is_scheduled_in_the_future_and_not_too_far(
    api_client: Client, package: dict[str, Any], migrated_db: str, when: datetime, problem: str
) -> None:
    registration = register(api_client, package)
    force_status(migrated_db, registration["id"], "verified")
    body = {"scheduled_at": when.isoformat(), "surveyor": "Budi"}
    response = post(api_client, f"/registrations/{registration['id']}/schedule-survey", body, token("cs"))
    assert response.status_code == 400
    assert response.json_body["error"]["details"]["problems"] == [{"field": "body.scheduled_at", "problem": problem}]
    within = {"scheduled_at": (datetime.now(UTC) + MAX_SURVEY_AHEAD - timedelta(hours=1)).isoformat(), "surveyor": "B"}
    assert (
        post(api_client, f"/registrations/{registration['id']}/schedule-survey", within, token("cs")).status_code == 200
    )


@pytest.mark.parametrize(
    ("bearer", "words"),
    [
        ("\xb7\xb7\xb7.\xb7\xb7.\xb7", "the token is not a well-formed JWT"),
        ("abc", "the token is not a well-formed JWT"),
        (jwt.encode({"sub": "x", "exp": 1, "cognito:groups": ["cs"]}, SECRET, algorithm="HS256"), "has expired"),
        (
            jwt.encode({"sub": "x", "exp": 2**40}, "another-secret-0123456789-0123456789", algorithm="HS256"),
            "signature",
        ),
        (jwt.encode({"sub": "x"}, SECRET, algorithm="HS256"), "no 'exp' claim"),
    ],
)
def test_a_refused_token_is_explained_in_words(api_client: Client, bearer: str, words: str) -> None:
    response = api_client.http.get("/registrations", headers={"Authorization": f"Bearer {bearer}"})
    assert response.status_code == 401
    error = response.json_body["error"]
    assert error["code"] == "unauthorized"
    assert words in error["message"]
    assert "codec" not in error["message"]
    assert "byte" not in error["message"]
