"""Every code of ``chalicelib.errors.ERROR_CODES``, produced at least once, and found where the OpenAPI
document says the route answers it.

The cases are generated from the table: a code with no way to produce it here fails the test.  API
Gateway's own codes are checked against the merge template (tests/integration/test_gateway_responses.py)
and here only listed as such.
"""

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.errors import ERROR_CODES, ErrorCode
from chalicelib.web.openapi import document
from tests.support.api import force_status, otp_code, post, register, registration_body, token
from tests.support.runtime import new_container

# (method, the route as documented, the response)
Produced = tuple[str, str, Any]
Producer = Callable[[Client, dict[str, Any], str, pytest.MonkeyPatch], Produced]
REGISTRATION = "/registrations/{registration_id}"


def _invalid_input(api_client: Client, package: dict[str, Any], url: str, mp: pytest.MonkeyPatch) -> Produced:
    return "get", "/registrations", api_client.http.get("/registrations?limit=500", headers=token("cs"))


def _invalid_code(api_client: Client, package: dict[str, Any], url: str, mp: pytest.MonkeyPatch) -> Produced:
    registration = register(api_client, package)
    wrong = f"{(int(otp_code(url, registration['id'])) + 1) % 10**6:06d}"
    response = post(api_client, f"/registrations/{registration['id']}/verify", {"code": wrong})
    return "post", f"{REGISTRATION}/verify", response


def _unauthorized(api_client: Client, package: dict[str, Any], url: str, mp: pytest.MonkeyPatch) -> Produced:
    return "get", "/registrations", api_client.http.get("/registrations")


def _forbidden(api_client: Client, package: dict[str, Any], url: str, mp: pytest.MonkeyPatch) -> Produced:
    body = {"name": "X", "speed_mbps": 1, "monthly_price_idr": 1}
    return "post", "/packages", post(api_client, "/packages", body, token("cs"))


def _not_found(api_client: Client, package: dict[str, Any], url: str, mp: pytest.MonkeyPatch) -> Produced:
    return "get", REGISTRATION, api_client.http.get(f"/registrations/{uuid.uuid4()}", headers=token("cs"))


def _method_not_allowed(api_client: Client, package: dict[str, Any], url: str, mp: pytest.MonkeyPatch) -> Produced:
    return "delete", "/packages", api_client.http.delete("/packages")


def _duplicate_registration(api_client: Client, package: dict[str, Any], url: str, mp: pytest.MonkeyPatch) -> Produced:
    body = registration_body(package)
    post(api_client, "/registrations", body)
    return "post", "/registrations", post(api_client, "/registrations", body)


def _duplicate_package(api_client: Client, package: dict[str, Any], url: str, mp: pytest.MonkeyPatch) -> Produced:
    body = {"name": package["name"].upper(), "speed_mbps": 1, "monthly_price_idr": 1}
    return "post", "/packages", post(api_client, "/packages", body, token("admin"))


def _transition_not_allowed(api_client: Client, package: dict[str, Any], url: str, mp: pytest.MonkeyPatch) -> Produced:
    registration = register(api_client, package)
    response = post(api_client, f"/registrations/{registration['id']}/approve", None, token("approver"))
    return "post", f"{REGISTRATION}/approve", response


def _not_awaiting_code(api_client: Client, package: dict[str, Any], url: str, mp: pytest.MonkeyPatch) -> Produced:
    registration = register(api_client, package)
    force_status(url, registration["id"], "verified")
    return (
        "post",
        f"{REGISTRATION}/resend-code",
        post(api_client, f"/registrations/{registration['id']}/resend-code", None),
    )


def _customer_data_kept(api_client: Client, package: dict[str, Any], url: str, mp: pytest.MonkeyPatch) -> Produced:
    registration = register(api_client, package)
    force_status(url, registration["id"], "customer_created")
    path = f"/registrations/{registration['id']}/personal-data"
    response = api_client.http.delete(
        path, body=json.dumps({"reason": "asked"}), headers={**token("admin"), "Content-Type": "application/json"}
    )
    return "delete", f"{REGISTRATION}/personal-data", response


def _payload_too_large(api_client: Client, package: dict[str, Any], url: str, mp: pytest.MonkeyPatch) -> Produced:
    body = json.dumps(registration_body(package, notes="x" * 20_000))
    return "post", "/registrations", post(api_client, "/registrations", body)


def _unsupported_media_type(api_client: Client, package: dict[str, Any], url: str, mp: pytest.MonkeyPatch) -> Produced:
    body = json.dumps(registration_body(package))
    return (
        "post",
        "/registrations",
        api_client.http.post("/registrations", body=body, headers={"Content-Type": "text/plain"}),
    )


def _idempotency_key_reused(api_client: Client, package: dict[str, Any], url: str, mp: pytest.MonkeyPatch) -> Produced:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = registration_body(package)
    post(api_client, "/registrations", first, key)
    # The same caller (keys are bound to the phone) with another body.
    other = {**first, "full_name": first["full_name"] + " Baru"}
    return "post", "/registrations", post(api_client, "/registrations", other, key)


def _too_many_requests(api_client: Client, package: dict[str, Any], url: str, mp: pytest.MonkeyPatch) -> Produced:
    registration = register(api_client, package)
    return (
        "post",
        f"{REGISTRATION}/resend-code",
        post(api_client, f"/registrations/{registration['id']}/resend-code", None),
    )


def _internal_error(api_client: Client, package: dict[str, Any], url: str, mp: pytest.MonkeyPatch) -> Produced:
    mp.delenv("OTP_HASH_KEY")  # a container deployed without its key: the code cannot be hashed
    new_container(mp)
    return "post", "/registrations", post(api_client, "/registrations", registration_body(package))


def _service_unavailable(api_client: Client, package: dict[str, Any], url: str, mp: pytest.MonkeyPatch) -> Produced:
    mp.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:9/nowhere?connect_timeout=2")
    new_container(mp)
    return "get", "/packages", api_client.http.get("/packages")


PRODUCERS: dict[str, Producer] = {
    "invalid_input": _invalid_input,
    "invalid_code": _invalid_code,
    "unauthorized": _unauthorized,
    "forbidden": _forbidden,
    "not_found": _not_found,
    "method_not_allowed": _method_not_allowed,
    "duplicate_registration": _duplicate_registration,
    "duplicate_package": _duplicate_package,
    "transition_not_allowed": _transition_not_allowed,
    "not_awaiting_code": _not_awaiting_code,
    "customer_data_kept": _customer_data_kept,
    "payload_too_large": _payload_too_large,
    "unsupported_media_type": _unsupported_media_type,
    "idempotency_key_reused": _idempotency_key_reused,
    "too_many_requests": _too_many_requests,
    "internal_error": _internal_error,
    "service_unavailable": _service_unavailable,
}


@pytest.mark.parametrize("error", ERROR_CODES, ids=[e.code for e in ERROR_CODES])
def test_every_code_is_produced_and_documented_where_it_is_answered(
    api_client: Client, package: dict[str, Any], migrated_db: str, monkeypatch: pytest.MonkeyPatch, error: ErrorCode
) -> None:
    if not error.by_service:
        assert error.gateway_responses, f"{error.code}: answered by neither the service nor API Gateway"
        return
    assert error.code in PRODUCERS, f"no way to produce {error.code}: add a producer"
    method, route, response = PRODUCERS[error.code](api_client, package, migrated_db, monkeypatch)
    assert (response.status_code, response.json_body["error"]["code"]) == (error.status, error.code), response.json_body
    assert set(response.json_body["error"]) == {"code", "message", "details"}
    operation = document()["paths"].get(route, {}).get(method)
    if operation is None:  # 405: the method is no operation of the path
        assert error.code == "method_not_allowed"
        return
    documented = operation["responses"].get(str(error.status))
    assert documented is not None, f"{method.upper()} {route} answers {error.status}; the document does not say so"
    codes = documented["content"]["application/json"]["examples"]
    assert error.code in codes, f"{method.upper()} {route} {error.status}: {error.code} not listed"


def test_every_code_of_the_table_has_its_case() -> None:
    assert set(PRODUCERS) == {e.code for e in ERROR_CODES if e.by_service}
