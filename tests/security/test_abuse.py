"""Abuse: what a stranger can do with the public API, each a finding of issue 16, reproduced.

Findings 1 and 2 (pumping, squatting), 4 (idempotency), 5 (tokens), 6 (e-mail
duplicates) and 8 (codes and PII) are here; 3 (one shared throttle, the WAF) is read
from the packaged template in ``tests/integration/test_package.py``; 7 (privilege) is
``test_least_privilege.py``.
"""

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from chalice.test import Client

import app as app_module
from chalicelib.errors import TooManyRequestsError
from chalicelib.notifications import sender
from chalicelib.notifications.whatsapp import WhatsAppClient
from chalicelib.platform import emf
from chalicelib.registrations import service
from chalicelib.registrations.models import RegistrationIn
from chalicelib.registrations.otp import SendBudget, client_bucket
from tests.integration.test_auth import CLIENT_ID, ISSUER, Jwks
from tests.support.api import OTP_KEY, SECRET, force_status, post, register, registration_body, token
from tests.support.runtime import new_container

STALE = timedelta(hours=24)

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
def test_lookalike_addresses_are_refused(api_client: Client, package: dict[str, Any], spelling: str, why: str) -> None:
    response = post(api_client, "/registrations", registration_body(package, email=spelling))
    assert response.status_code == 400, why
    assert response.json_body["error"]["details"]["problems"][0]["field"] == "body.email"


def test_full_width_and_case_spellings_are_the_same_address(api_client: Client, package: dict[str, Any]) -> None:
    first = register(api_client, package, email="Dewi.Lestari@Example.co.id")
    assert first["email"] == "Dewi.Lestari@example.co.id", "the domain is stored in lower case"
    for spelling in ("\uff24\uff45\uff57\uff49.lestari@example.co.id", "dewi.lestari@EXAMPLE.CO.ID"):
        response = post(api_client, "/registrations", registration_body(package, email=spelling))
        assert response.status_code == 409, spelling


# --- finding 8: names, addresses and codes -------------------------------------------


@pytest.mark.parametrize("field", ["full_name", "address", "city"])
@pytest.mark.parametrize("hidden", ["\u202e", "\u2066", "\u200f", "\x07", "\x1b[31m", "\t", "\n"])
def test_names_and_addresses_refuse_control_and_direction_characters(
    api_client: Client, package: dict[str, Any], field: str, hidden: str
) -> None:
    response = post(api_client, "/registrations", registration_body(package, **{field: f"Siti{hidden}Nurhaliza"}))
    assert response.status_code == 400
    assert response.json_body["error"]["details"]["problems"][0]["field"] == f"body.{field}"


def test_notes_keep_their_line_breaks(api_client: Client, package: dict[str, Any]) -> None:
    assert (
        register(api_client, package, notes="Rumah cat hijau\nDekat masjid")["notes"] == "Rumah cat hijau\nDekat masjid"
    )


@pytest.mark.parametrize(
    "code", ["\u0661\u0662\u0663\u0664\u0665\u0666", "\uff11\uff12\uff13\uff14\uff15\uff16", "12345\u0663"]
)
def test_codes_are_ascii_digits(api_client: Client, package: dict[str, Any], code: str) -> None:
    registration = register(api_client, package)
    response = post(api_client, f"/registrations/{registration['id']}/verify", {"code": code})
    assert response.status_code == 400
    assert response.json_body["error"]["code"] == "invalid_input"


# --- finding 5: tokens ----------------------------------------------------------------


@pytest.fixture
def cognito(api_client: Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[Jwks]:
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
        ({"token_use": None}, "the token has no 'token_use' claim"),
        ({"client_id": "another-app-client-of-the-pool"}, "the token was issued to another application"),
        ({"client_id": None}, "the token was issued to another application"),
        ({"exp": 1}, "the token has expired"),
        ({"iss": ISSUER + "x"}, "the token was issued by another issuer"),
    ],
)
def test_id_tokens_and_other_app_clients_are_refused_in_our_words(
    api_client: Client, cognito: Jwks, claims: dict[str, Any], message: str
) -> None:
    response = api_client.http.get("/registrations", headers=cognito.token("admin", **claims))
    assert response.status_code == 401
    assert response.json_body["error"] == {"code": "unauthorized", "message": message, "details": {}}


def test_an_access_token_of_our_app_client_is_accepted(api_client: Client, cognito: Jwks) -> None:
    assert api_client.http.get("/registrations", headers=cognito.token("cs")).status_code == 200


@pytest.mark.parametrize("groups", [5, {"admin": 1}, "admin", [["admin"]], [{"admin": 1}], None])
def test_groups_that_are_not_a_list_of_strings_give_no_role(api_client: Client, cognito: Jwks, groups: Any) -> None:
    headers = cognito.token(**{"cognito:groups": groups})
    response = api_client.http.get("/registrations", headers=headers)
    assert response.status_code == 403, "no role: never a 500, never admin"


def test_local_id_tokens_are_refused_too(api_client: Client) -> None:
    response = api_client.http.get("/registrations", headers=token("admin", token_use="id"))
    assert response.status_code == 401
    assert response.json_body["error"]["message"] == "only access tokens are accepted"


# --- finding 1: WhatsApp pumping --------------------------------------------------------


@pytest.fixture
def limited(runtime_db: str, migrated_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """The API with production-like OTP limits: 3 codes per address per hour (a stage with no settings of its own)."""
    monkeypatch.setenv("DATABASE_URL", runtime_db)
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("OTP_HASH_KEY", OTP_KEY)
    monkeypatch.setenv("OTP_SENDS_PER_CLIENT_PER_HOUR", "3")
    monkeypatch.setenv("OTP_SENDS_PER_DAY", "1000")
    new_container(monkeypatch)
    with Client(app_module.app, stage_name="limits-as-in-production") as test_client:
        yield test_client
    app_module.runtime.database.reset()


def test_pumping_from_one_address_stops_at_the_limit_and_sends_nothing_past_it(
    limited: Client, migrated_db: str
) -> None:
    package = new_package(migrated_db)
    answers = [post(limited, "/registrations", registration_body(package)) for _ in range(6)]
    assert [a.status_code for a in answers] == [201, 201, 201, 429, 429, 429]
    refused = answers[3]
    assert refused.json_body["error"]["code"] == "too_many_requests"
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert rows(migrated_db, "SELECT count(*) FROM customer_registrations") == [(3,)], "no registration left behind"
    assert otp_messages(migrated_db) == 3, "nothing sent past the limit"
    # A new code for one of them counts against the same address.
    first = answers[0].json_body["id"]
    rows(migrated_db, "UPDATE registration_otps SET sent_at = now() - interval '2 minutes'")
    resend = post(limited, f"/registrations/{first}/resend-code", {})
    assert resend.status_code == 429
    assert int(resend.headers["Retry-After"]) > 0
    assert otp_messages(migrated_db) == 3


def test_the_local_stage_lets_make_run_and_the_tests_through(api_client: Client, package: dict[str, Any]) -> None:
    for _ in range(12):
        register(api_client, package)


def test_eight_concurrent_registrations_at_the_edge_let_exactly_the_limit_through(
    runtime_db: str, migrated_db: str
) -> None:
    package = new_package(migrated_db)
    budget = SendBudget("198.51.100.7", per_client_per_hour=5, per_day=1000)
    outcomes = race(runtime_db, package, [budget] * 8)
    assert sorted(outcomes) == [201] * 5 + [429] * 3
    assert rows(migrated_db, "SELECT count(*) FROM customer_registrations") == [(5,)]
    assert otp_messages(migrated_db) == 5
    assert rows(migrated_db, "SELECT sends FROM otp_send_counts WHERE bucket = 'client:198.51.100.7'") == [(5,)]
    # Another address is not held back by this one.
    assert race(runtime_db, package, [SendBudget("198.51.100.8", 5, 1000)]) == [201]


def test_the_daily_budget_stops_everyone_and_says_when_to_come_back(
    runtime_db: str, migrated_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    package = new_package(migrated_db)
    addresses = ["203.0.113.1", "203.0.113.2", "2001:db8::1", "2001:db8::2"]
    outcomes = [race(runtime_db, package, [SendBudget(a, 10, per_day=3)])[0] for a in addresses]
    assert outcomes == [201, 201, 201, 429]
    assert otp_messages(migrated_db) == 3
    used = [doc["OtpBudgetUsedPercent"] for doc in emf.parse(capsys.readouterr().out) if "OtpBudgetUsedPercent" in doc]
    assert used == [pytest.approx(33.33), pytest.approx(66.67), 100.0], "the alarm's metric"
    with psycopg.connect(runtime_db, autocommit=True) as conn, pytest.raises(TooManyRequestsError) as refused:
        service.register(conn, body_for(package), OTP_KEY, budget=SendBudget("203.0.113.9", 10, 3), stale_after=STALE)
    assert refused.value.message == "no more codes can be sent today; try again later"
    assert refused.value.retry_after_s is not None
    assert 0 < refused.value.retry_after_s <= 86_400


def test_ipv6_clients_are_counted_by_their_64() -> None:
    assert client_bucket("2001:db8:1:2:aaaa::1") == client_bucket("2001:db8:1:2:bbbb::2") == "client:2001:db8:1:2::/64"
    assert client_bucket("2001:db8:1:3::1") != client_bucket("2001:db8:1:2::1")
    assert client_bucket(None) == client_bucket("not an address") == "client:unknown"


# --- finding 2: squatting ---------------------------------------------------------------


def test_a_stale_unverified_registration_gives_way_at_once(
    api_client: Client, package: dict[str, Any], migrated_db: str
) -> None:
    squatter = register(api_client, package)
    fresh_attempt = post(api_client, "/registrations", registration_body(package, phone=squatter["phone"]))
    assert fresh_attempt.status_code == 409, "within 24 hours the first registration holds the phone"
    rows(migrated_db, "UPDATE customer_registrations SET created_at = now() - interval '24 hours 1 minute'")
    owner = register(api_client, package, phone=squatter["phone"])
    assert owner["status"] == "pending_verification"
    gone = api_client.http.get(f"/registrations/{squatter['id']}", headers=token("cs")).json_body
    assert gone["status"] == "cancelled"
    assert gone["history"][-1]["action"] == "cancel"
    assert gone["history"][-1]["actor"] == "system"
    assert "not verified in time" in gone["history"][-1]["reason"]


def test_the_daily_sweep_expires_the_rest(api_client: Client, package: dict[str, Any], migrated_db: str) -> None:
    stale = [register(api_client, package)["id"] for _ in range(2)]
    verified, fresh = register(api_client, package)["id"], register(api_client, package)["id"]
    force_status(migrated_db, verified, "verified")
    rows(
        migrated_db,
        "UPDATE customer_registrations SET created_at = now() - interval '3 days' WHERE id = ANY(%s::uuid[])",
        [*stale, verified],
    )
    event = api_client.events.generate_cw_event("Scheduled Event", "aws.events", {}, [])
    assert api_client.lambda_.invoke("expire_registrations", event).payload["expired"] == 2
    statuses = dict(rows(migrated_db, "SELECT id::text, status FROM customer_registrations"))
    assert [statuses[i] for i in [*stale, verified, fresh]] == [
        "cancelled",
        "cancelled",
        "verified",
        "pending_verification",
    ]


# --- finding 4: idempotency -------------------------------------------------------------


def test_a_failed_request_leaves_no_key_and_its_replay_fails_the_same_way(
    api_client: Client, package: dict[str, Any], migrated_db: str
) -> None:
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    unknown_package = registration_body(package, package_id=str(uuid.uuid4()))
    for _ in range(2):
        response = post(api_client, "/registrations", unknown_package, key)
        assert response.status_code == 400, "never status 0 from a stored placeholder"
        assert response.json_body["error"]["details"]["problems"][0]["field"] == "body.package_id"
    assert rows(migrated_db, "SELECT count(*) FROM idempotency_keys") == [(0,)]
    assert post(api_client, "/registrations", registration_body(package), key).status_code == 201


def test_another_client_with_the_same_key_gets_its_own_answer(api_client: Client, package: dict[str, Any]) -> None:
    key = {"Idempotency-Key": "order-1"}
    mine = registration_body(package)
    first = post(api_client, "/registrations", mine, key)
    theirs = post(api_client, "/registrations", registration_body(package), key)
    assert theirs.status_code == 201, "not 422: the key is bound to the caller's phone"
    assert theirs.json_body["id"] != first.json_body["id"]
    assert post(api_client, "/registrations", mine, key).json_body["id"] == first.json_body["id"], "mine still replays"


@pytest.mark.parametrize("key", ["x" * 256, "ends-with-newline\n", "with space", "ключ", "tab\tkey", ""])
def test_keys_are_bounded_visible_ascii(api_client: Client, package: dict[str, Any], key: str) -> None:
    response = post(api_client, "/registrations", registration_body(package), {"Idempotency-Key": key})
    assert response.status_code == 400
    assert response.json_body["error"]["details"]["problems"][0]["field"] == "header.Idempotency-Key"


# --- finding 8: codes at rest, PII in caches ----------------------------------------------


def test_an_unsent_code_is_redacted_once_it_expires_even_while_whatsapp_is_down(
    api_client: Client, package: dict[str, Any], migrated_db: str, runtime_db: str
) -> None:
    registration = register(api_client, package)
    assert "text" in json.dumps(outbox_payload(migrated_db, registration["id"])), "pending: the code is there"
    rows(migrated_db, 'UPDATE notification_outbox SET payload = payload || \'{"valid_until": "2000-01-01T00:00:00Z"}\'')
    down = WhatsAppClient("http://127.0.0.1:9/v21.0", "100000000000001", "token", timeout_s=0.2)
    with psycopg.connect(runtime_db, autocommit=True) as conn:
        counts = sender.send_due(conn, down)
    assert counts["too_late"] == 1
    payload = outbox_payload(migrated_db, registration["id"])
    assert "components" not in payload
    assert payload["redacted"] is True
    assert rows(migrated_db, "SELECT status FROM notification_outbox") == [("failed",)]


def test_staff_responses_with_pii_are_not_stored_by_caches(api_client: Client, package: dict[str, Any]) -> None:
    registration = register(api_client, package)
    staff = token("cs")
    for response in (
        api_client.http.get(f"/registrations/{registration['id']}", headers=staff),
        api_client.http.get("/registrations", headers=staff),
        post(api_client, f"/registrations/{registration['id']}/verify", {}, staff),
        post(api_client, "/registrations", registration_body(package)),
    ):
        assert response.headers.get("Cache-Control") == "no-store", response.status_code


def new_package(url: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO packages (name, speed_mbps, monthly_price_idr) VALUES (%s, 30, 250000) RETURNING id::text",
            (f"Abuse {uuid.uuid4().hex[:6]}",),
        ).fetchone()
    assert row is not None
    return {"id": row[0]}


def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql.encode(), params)
        return cursor.fetchall() if cursor.description else []


def otp_messages(url: str) -> int:
    return int(rows(url, "SELECT count(*) FROM notification_outbox WHERE template = 'registration_otp'")[0][0])


def outbox_payload(url: str, registration_id: str) -> dict[str, Any]:
    payload: dict[str, Any] = rows(
        url, "SELECT payload FROM notification_outbox WHERE registration_id = %s", registration_id
    )[0][0]
    return payload


def body_for(package: dict[str, Any]) -> RegistrationIn:
    return RegistrationIn.model_validate_json(json.dumps(registration_body(package)))


def race(url: str, package: dict[str, Any], budgets: list[SendBudget]) -> list[int]:
    """One registration per budget, each on its own connection, all let go at once: their statuses."""
    barrier = threading.Barrier(len(budgets))
    outcomes: list[int] = []

    def attempt(budget: SendBudget) -> None:
        body = body_for(package)
        with psycopg.connect(url, autocommit=True) as conn:
            barrier.wait()
            # As the API runs it: inside an invocation, whose one EMF line goes to standard output.
            with emf.invocation("api_handler"):
                try:
                    outcomes.append(service.register(conn, body, OTP_KEY, budget=budget, stale_after=STALE).status)
                except TooManyRequestsError:
                    outcomes.append(429)

    threads = [threading.Thread(target=attempt, args=(budget,)) for budget in budgets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
