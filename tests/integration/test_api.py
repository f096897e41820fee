"""The HTTP API through chalice.test.Client against the real PostgreSQL."""

import threading
import time
import uuid
from typing import Any

import jwt
import psycopg
import pytest
from chalice.test import Client

from chalicelib.errors import AppError
from chalicelib.registrations import actions, service
from chalicelib.staff import Role, Staff
from chalicelib.statuses import RegistrationStatus
from chalicelib.workflow import TRANSITIONS, Action
from tests.support.api import BODY_BY_ACTION, force_status, post, register, registration_body, token
from tests.support.runtime import new_container


def test_packages_public_list_and_admin_create(api_client: Client, package: dict[str, Any]) -> None:
    listed = api_client.http.get("/packages").json_body
    assert package["id"] in [p["id"] for p in listed]
    body = {"name": "Bisnis 100", "speed_mbps": 100, "monthly_price_idr": 750_000}
    assert post(api_client, "/packages", body).status_code == 401
    assert post(api_client, "/packages", body, token("cs")).status_code == 403
    assert post(api_client, "/packages", {**body, "speed_mbps": "fast"}, token("admin")).status_code == 400
    assert post(api_client, "/packages", {**body, "name": package["name"].upper()}, token("admin")).status_code == 409


def test_register_normalises_the_phone_and_starts_pending(api_client: Client, package: dict[str, Any]) -> None:
    created = register(api_client, package, phone="+62 812-3456-7801")
    assert created["phone"] == "+6281234567801"
    assert created["status"] == "pending_verification"
    shown = api_client.http.get(f"/registrations/{created['id']}", headers=token("cs")).json_body
    assert [h["to_status"] for h in shown["history"]] == ["pending_verification"]
    assert shown["customer"] is None


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"status": "approved"}, 400),  # a body never sets the status
        ({"phone": "021 1234567"}, 400),  # a landline
        ({"phone": "+65 9123 4567"}, 400),  # not Indonesian
        ({"email": "not-an-address"}, 400),
        ({"full_name": "a\u0000b"}, 400),
        ({"full_name": "x" * 201}, 400),
        ({"full_name": " \t\f "}, 400),  # required text holds more than whitespace
        ({"package_id": "not-a-uuid"}, 400),
        ({"package_id": str(uuid.uuid4())}, 400),
    ],
)
def test_bad_input_is_400_and_creates_nothing(
    api_client: Client, package: dict[str, Any], changes: dict[str, Any], status: int
) -> None:
    response = post(api_client, "/registrations", registration_body(package, **changes))
    assert response.status_code == status
    assert set(response.json_body["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize(
    ("raw", "status"), [("not json", 400), ("[]", 400), ("", 400), ('{"a": "' + "x" * 20_000 + '"}', 413)]
)
def test_bodies_that_are_not_a_registration(api_client: Client, raw: str, status: int) -> None:
    assert post(api_client, "/registrations", raw).status_code == status


def test_text_is_stored_exactly(api_client: Client, package: dict[str, Any]) -> None:
    # Spaces, quotes, emoji and other scripts as sent (control characters are refused: tests/security).
    name = " Dewi 'Ayu' \"Lestari\" 🌺 ดาว "
    assert register(api_client, package, full_name=name)["full_name"] == name


def test_duplicate_in_another_spelling_is_409_naming_nothing(api_client: Client, package: dict[str, Any]) -> None:
    first = register(api_client, package, phone="081299990001", email="Budi@Example.com")
    for changes in ({"phone": "+62 812-9999-0001"}, {"email": "budi@example.COM"}):
        response = post(api_client, "/registrations", registration_body(package, **changes))
        assert response.status_code == 409
        assert response.json_body["error"]["code"] == "duplicate_registration"
        assert response.json_body["error"]["details"] == {}
    # Once the first is finished, the same person may register again.
    assert post(api_client, f"/registrations/{first['id']}/cancel", {"reason": "x"}, token("cs")).status_code == 200
    register(api_client, package, phone="081299990001", email="budi@example.com")


def test_auth_failures(api_client: Client, package: dict[str, Any]) -> None:
    registration = register(api_client, package)
    path = f"/registrations/{registration['id']}"
    assert api_client.http.get(path).status_code == 401
    forged = token("cs", secret="forged-by-someone-who-guessed-the-format")
    assert api_client.http.get(path, headers=forged).status_code == 401
    assert api_client.http.get(path, headers=token("cs", expires_in=-10)).status_code == 401
    none_alg = jwt.encode({"sub": "x", "cognito:groups": ["admin"], "exp": time.time() + 60}, "", algorithm="none")
    assert api_client.http.get(path, headers={"Authorization": f"Bearer {none_alg}"}).status_code == 401
    assert api_client.http.get(path, headers=token("cs")).status_code == 200
    assert api_client.http.get(f"/registrations/{uuid.uuid4()}", headers=token("cs")).status_code == 404


MATRIX = [
    (t.action, source, role) for t in TRANSITIONS if not t.worker_only for source in sorted(t.sources) for role in Role
]


@pytest.mark.parametrize(("action", "source", "role"), MATRIX)
def test_role_by_action_matrix(
    api_client: Client, package: dict[str, Any], migrated_db: str, action: Action, source: str, role: Role
) -> None:
    transition = next(t for t in TRANSITIONS if t.action is action)
    registration = register(api_client, package)
    force_status(migrated_db, registration["id"], source)
    response = post(api_client, f"/registrations/{registration['id']}/{action}", BODY_BY_ACTION[action], token(role))
    if role in transition.roles:
        assert response.status_code == 200, response.json_body
        assert response.json_body["status"] == transition.target
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("action", [t.action for t in TRANSITIONS if not t.worker_only])
def test_forbidden_moves_are_409_with_the_current_status(
    api_client: Client, package: dict[str, Any], migrated_db: str, action: Action
) -> None:
    transition = next(t for t in TRANSITIONS if t.action is action)
    for status in RegistrationStatus:
        if status in transition.sources:
            continue
        registration = register(api_client, package)
        force_status(migrated_db, registration["id"], status)
        response = post(
            api_client, f"/registrations/{registration['id']}/{action}", BODY_BY_ACTION[action], token("admin")
        )
        assert response.status_code == 409, (status, response.json_body)
        assert response.json_body["error"]["details"]["current_status"] == status
        shown = api_client.http.get(f"/registrations/{registration['id']}", headers=token("admin")).json_body
        assert shown["status"] == status, "a refused move changes nothing"


def test_approve_refuses_an_unfeasible_survey(api_client: Client, package: dict[str, Any], migrated_db: str) -> None:
    registration = register(api_client, package)
    force_status(migrated_db, registration["id"], "survey_completed", feasible=False)
    response = post(api_client, f"/registrations/{registration['id']}/approve", None, token("approver"))
    assert response.status_code == 409
    assert "reject" in response.json_body["error"]["details"]["allowed_actions"]


def test_concurrent_actions_exactly_one_wins(api_client: Client, package: dict[str, Any], migrated_db: str) -> None:
    registration = register(api_client, package)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt(action: Action) -> None:
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            barrier.wait()
            try:
                model = actions.BODY_BY_ACTION[action]
                assert model is not None
                body = model.model_validate({"reason": "race"})
                service.act(conn, registration["id"], action, Staff("cs1", frozenset({Role.ADMIN})), body)
                outcomes.append(f"won {action}")
            except AppError as error:
                outcomes.append(error.code)

    threads = [threading.Thread(target=attempt, args=(a,)) for a in [Action.CANCEL, Action.REJECT] * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(o.startswith("won") for o in outcomes) == 1
    assert outcomes.count("transition_not_allowed") == 7
    history = api_client.http.get(f"/registrations/{registration['id']}", headers=token("cs")).json_body["history"]
    assert len(history) == 2


def test_database_down_is_503_with_retry_after(api_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    new_container(monkeypatch)
    response = api_client.http.get("/packages")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json_body["error"]["code"] == "service_unavailable"


@pytest.mark.parametrize(
    ("method", "headers", "status"),
    [("put", {}, 405), ("post", {"Content-Type": "application/xml"}, 415)],
)
def test_chalices_own_errors_have_the_pinned_shape(
    api_client: Client, method: str, headers: dict[str, str], status: int
) -> None:
    response = getattr(api_client.http, method)("/registrations", body="<x/>", headers=headers)
    assert response.status_code == status
    assert set(response.json_body["error"]) == {"code", "message", "details"}


def test_list_is_keyset_paginated_and_filtered(api_client: Client, package: dict[str, Any], migrated_db: str) -> None:
    city = f"Kota {uuid.uuid4().hex[:6]}"
    created = [register(api_client, package, city=city)["id"] for _ in range(5)]
    force_status(migrated_db, created[0], "verified")

    seen: list[str] = []
    cursor = None
    for _ in range(5):
        query = f"/registrations?city={city.replace(' ', '%20')}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api_client.http.get(query, headers=token("approver")).json_body
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created)), "newest first, each exactly once"

    verified = api_client.http.get(
        f"/registrations?city={city.replace(' ', '%20')}&status=verified", headers=token("cs")
    )
    assert [item["id"] for item in verified.json_body["items"]] == [created[0]]


@pytest.mark.parametrize(
    "query", ["limit=101", "limit=0", "status=unknown", "cursor=bm9wZQ", "colour=red", "created_to=0.5"]
)
def test_list_refuses_bad_queries(api_client: Client, query: str) -> None:
    response = api_client.http.get(f"/registrations?{query}", headers=token("cs"))
    assert response.status_code == 400


def test_list_needs_staff(api_client: Client) -> None:
    assert api_client.http.get("/registrations").status_code == 401
