"""Every route by role, generated from ``app.app.routes`` and the transition table; hostile bodies.

Tokens expired, forged, ``alg: none`` and of a wrong issuer are in
``tests/integration/test_api.py::test_auth_failures`` and ``test_auth.py``; the OTP
brute force stop after 5 tries in ``test_verification.py::test_five_wrong_codes_lock_the_code_until_a_new_one``.
"""

import json
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.staff import Role
from chalicelib.workflow import TRANSITION_BY_ACTION, Action
from tests.support.api import BODY_BY_ACTION, force_status, post, register, token

PUBLIC = {
    ("GET", "/packages"),
    ("POST", "/registrations"),
    ("GET", "/openapi.json"),
    ("POST", "resend-code"),
    ("GET", "/docs"),
    ("GET", "/docs/{name}"),
}
# Who may call each route that is not a workflow action (admin may do everything staff may).
STAFF_ROUTES: dict[tuple[str, str], set[Role]] = {
    ("POST", "/packages"): {Role.ADMIN},
    ("GET", "/registrations"): set(Role),
    ("GET", "/registrations/{registration_id}"): set(Role),
    ("POST", "/registrations/{registration_id}/create-customer"): {Role.APPROVER, Role.ADMIN},
    ("GET", "/registrations/{registration_id}/personal-data"): {Role.ADMIN},
    ("DELETE", "/registrations/{registration_id}/personal-data"): {Role.ADMIN},
}


def routes() -> list[tuple[str, str]]:
    return sorted((method, path) for path, entry in app_module.app.routes.items() for method in entry)


def calls() -> list[tuple[str, str, str | None]]:
    """(method, concrete path, the action for /{action}) for every route; each action of the table for /{action}."""
    result: list[tuple[str, str, str | None]] = []
    for method, path in routes():
        if path.endswith("/{action}"):
            result.extend((method, path, action.value) for action in Action)
        else:
            result.append((method, path, None))
    return result


def test_the_matrix_covers_every_route() -> None:
    covered = {(m, p) for m, p, _ in calls()}
    assert covered == set(routes())
    assert len(routes()) == 13, "a new route: add it to PUBLIC or STAFF_ROUTES"
    for method, path in routes():
        assert (
            (method, path) in PUBLIC
            or (method, path.rsplit("/", 1)[-1]) in PUBLIC
            or ((method, path) in STAFF_ROUTES or path.endswith("/{action}"))
        ), (method, path)


def _request(api_client: Client, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    raw = b"" if body is None else json.dumps(body).encode()
    return api_client.http.request(method, path, body=raw, headers={"Content-Type": "application/json", **headers})


@pytest.mark.parametrize(("method", "route", "action"), calls())
def test_every_route_without_a_token(
    api_client: Client, package: dict[str, Any], migrated_db: str, method: str, route: str, action: str | None
) -> None:
    registration = register(api_client, package)
    path = route.replace("{registration_id}", registration["id"]).replace("{action}", action or "")
    body: Any = (
        BODY_BY_ACTION.get(Action(action)) if action is not None and action in Action._value2member_map_ else None
    )
    if route == "/packages" and method == "POST":
        body = {"name": "X", "speed_mbps": 1, "monthly_price_idr": 1}
    if route == "/registrations" and method == "POST":
        body = {**{k: registration[k] for k in ("full_name", "email", "phone")}, "address": "a", "city": "b"}
    response = _request(api_client, method, path, body, {})
    public = (method, route) in PUBLIC or route.endswith("/resend-code")
    if public:
        assert response.status_code != 401, response.json_body
    elif action == Action.VERIFY:
        assert response.status_code == 401, "verify without a code needs staff"
        with_code = _request(api_client, method, path, {"code": "000000"}, {})
        assert with_code.status_code == 400, "with a code it is public (a wrong code is 400)"
    else:
        assert response.status_code == 401, response.json_body
        assert response.json_body["error"]["code"] == "unauthorized"


STAFF_CALLS = [
    (method, route, action, role)
    for method, route, action in calls()
    if (method, route) in STAFF_ROUTES or action is not None
    for role in Role
]


@pytest.mark.parametrize(("method", "route", "action", "role"), STAFF_CALLS)
def test_every_staff_route_by_role(
    api_client: Client,
    package: dict[str, Any],
    migrated_db: str,
    method: str,
    route: str,
    action: str | None,
    role: Role,
) -> None:
    registration = register(api_client, package)
    path = route.replace("{registration_id}", registration["id"]).replace("{action}", action or "")
    if action is None:
        allowed = STAFF_ROUTES[(method, route)]
        body = {"name": f"P {role}", "speed_mbps": 1, "monthly_price_idr": 1} if method == "POST" else None
    else:
        transition = TRANSITION_BY_ACTION[Action(action)]
        allowed = {Role.APPROVER, Role.ADMIN} if transition.worker_only else set(transition.roles) | {Role.ADMIN}
        body = BODY_BY_ACTION.get(Action(action))
        # A status the action may start from, so that only the role decides (create-customer: approved,
        # then 503 or 202 depending on the queue, never 403 for an allowed role).
        force_status(migrated_db, registration["id"], sorted(transition.sources)[0])
    response = _request(api_client, method, path, body, token(role))
    if role in allowed:
        assert response.status_code not in (401, 403), response.json_body
    else:
        assert response.status_code == 403, response.json_body
        assert response.json_body["error"]["code"] == "forbidden"


def test_deeply_nested_json_within_the_size_limit_is_400_not_500(api_client: Client) -> None:
    nested = "[" * 8000 + "]" * 8000  # 16,000 bytes: under the 16 KiB limit
    assert len(nested) < 16 * 1024
    for path in ("/registrations", "/packages"):
        response = post(api_client, path, nested, token("admin"))
        assert response.status_code == 400, (path, response.status_code)
    deep_object = '{"a":' * 2500 + "1" + "}" * 2500  # 15,001 bytes
    assert post(api_client, "/registrations", deep_object).status_code == 400


def test_a_one_megabyte_body_is_413(api_client: Client) -> None:
    big = json.dumps({"full_name": "x" * 1_000_000})
    response = post(api_client, "/registrations", big)
    assert response.status_code == 413
    assert response.json_body["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    "body",
    [
        '{"full_name": "\\ud800"}',  # a lone surrogate
        '{"phone": 1e999}',
        '{"email": null, "email": "a@b.co"}',  # a repeated key
        "\ufeff{}",
        '{"notes": "' + "\u202e" * 100 + '"}',
    ],
)
def test_odd_json_is_a_4xx(api_client: Client, body: str) -> None:
    assert 400 <= post(api_client, "/registrations", body).status_code < 500
