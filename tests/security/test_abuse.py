"""Abuse: what a stranger can do with the public API, each a finding of issue 16, reproduced.

Findings 1 and 2 (pumping, squatting), 4 (idempotency), 5 (tokens), 6 (e-mail
duplicates) and 8 (codes and PII) are here; 3 (one shared throttle, the WAF) is read
from the packaged template in ``tests/integration/test_package.py``; 7 (privilege) is
``test_least_privilege.py``.
"""

from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from tests.integration.api import post, register, registration_body, token
from tests.integration.test_auth import CLIENT_ID, ISSUER, Jwks
from tests.support.runtime import new_container

# --- finding 6: one mailbox, one address ---------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "why"),
    [
        ("siti@gm\u0430il.com", "a Cyrillic а in a Latin domain"),
        ("siti@\u0430\u0440\u0440\u04cf\u0435.com", "a domain made only of Cyrillic look-alikes of apple"),
        ("sit\u0456@gmail.com", "a Cyrillic і in a Latin name"),
        ("si\u200bti@gmail.com", "a zero-width space"),
        ("siti@gmail.com\n", "a trailing line break"),
    ],
)
def test_lookalike_addresses_are_refused(client: Client, package: dict[str, Any], spelling: str, why: str) -> None:
    response = post(client, "/registrations", registration_body(package, email=spelling))
    assert response.status_code == 400, why
    assert response.json_body["error"]["details"]["problems"][0]["field"] == "email"


def test_full_width_and_case_spellings_are_the_same_address(client: Client, package: dict[str, Any]) -> None:
    first = register(client, package, email="Dewi.Lestari@Example.co.id")
    assert first["email"] == "Dewi.Lestari@example.co.id", "the domain is stored in lower case"
    for spelling in ("\uff24\uff45\uff57\uff49.lestari@example.co.id", "dewi.lestari@EXAMPLE.CO.ID"):
        response = post(client, "/registrations", registration_body(package, email=spelling))
        assert response.status_code == 409, spelling


# --- finding 8: names, addresses and codes -------------------------------------------


@pytest.mark.parametrize("field", ["full_name", "address", "city"])
@pytest.mark.parametrize("hidden", ["\u202e", "\u2066", "\u200f", "\x07", "\x1b[31m", "\t", "\n"])
def test_names_and_addresses_refuse_control_and_direction_characters(
    client: Client, package: dict[str, Any], field: str, hidden: str
) -> None:
    response = post(client, "/registrations", registration_body(package, **{field: f"Siti{hidden}Nurhaliza"}))
    assert response.status_code == 400
    assert response.json_body["error"]["details"]["problems"][0]["field"] == field


def test_notes_keep_their_line_breaks(client: Client, package: dict[str, Any]) -> None:
    assert register(client, package, notes="Rumah cat hijau\nDekat masjid")["notes"] == "Rumah cat hijau\nDekat masjid"


@pytest.mark.parametrize(
    "code", ["\u0661\u0662\u0663\u0664\u0665\u0666", "\uff11\uff12\uff13\uff14\uff15\uff16", "12345\u0663"]
)
def test_codes_are_ascii_digits(client: Client, package: dict[str, Any], code: str) -> None:
    registration = register(client, package)
    response = post(client, f"/registrations/{registration['id']}/verify", {"code": code})
    assert response.status_code == 400
    assert response.json_body["error"]["code"] == "invalid_input"


# --- finding 5: tokens ----------------------------------------------------------------


@pytest.fixture
def cognito(client: Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[Jwks]:
    """Cognito mode: RS256 against a JWKS on loopback, one app client allowed."""
    served = Jwks()
    monkeypatch.setenv("AUTH_JWKS_URL", served.url)
    monkeypatch.setenv("AUTH_ISSUER", ISSUER)
    monkeypatch.setenv("AUTH_CLIENT_IDS", CLIENT_ID)
    new_container(monkeypatch)
    yield served
    served.server.shutdown()


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"token_use": "id", "aud": CLIENT_ID, "client_id": None}, "only access tokens are accepted"),
        ({"token_use": None}, "the token lacks a claim it needs"),
        ({"client_id": "another-app-client-of-the-pool"}, "the token was issued to another application"),
        ({"client_id": None}, "the token was issued to another application"),
        ({"exp": 1}, "the token has expired"),
        ({"iss": ISSUER + "x"}, "the token was not issued by our sign-in service"),
    ],
)
def test_id_tokens_and_other_app_clients_are_refused_in_our_words(
    client: Client, cognito: Jwks, claims: dict[str, Any], message: str
) -> None:
    response = client.http.get("/registrations", headers=cognito.token("admin", **claims))
    assert response.status_code == 401
    assert response.json_body["error"] == {"code": "unauthorized", "message": message, "details": {}}


def test_an_access_token_of_our_app_client_is_accepted(client: Client, cognito: Jwks) -> None:
    assert client.http.get("/registrations", headers=cognito.token("cs")).status_code == 200


@pytest.mark.parametrize("groups", [5, {"admin": 1}, "admin", [["admin"]], [{"admin": 1}], None])
def test_groups_that_are_not_a_list_of_strings_give_no_role(client: Client, cognito: Jwks, groups: Any) -> None:
    headers = cognito.token(**{"cognito:groups": groups})
    response = client.http.get("/registrations", headers=headers)
    assert response.status_code == 403, "no role: never a 500, never admin"


def test_local_id_tokens_are_refused_too(client: Client) -> None:
    response = client.http.get("/registrations", headers=token("admin", token_use="id"))
    assert response.status_code == 401
    assert response.json_body["error"]["message"] == "only access tokens are accepted"
