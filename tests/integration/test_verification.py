"""The registrant's one-time code, and Idempotency-Key on POST /registrations, against the real PostgreSQL."""

import json
import threading
import uuid
from typing import Any

import psycopg
import pytest
from chalice.test import Client

from chalicelib.errors import AppError
from chalicelib.registrations import service as registrations
from chalicelib.registrations.models import RegistrationIn
from tests.support.api import BUDGET, OTP_KEY, STALE_AFTER, otp_code, post, register, registration_body, token


def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def allow_resend(url: str, registration_id: str) -> None:
    sql = "UPDATE registration_otps SET sent_at = now() - interval '61 s' WHERE registration_id = %s"
    rows(url, sql, registration_id)


def test_registering_writes_a_hashed_code_and_its_whatsapp_message(
    api_client: Client, package: dict[str, Any], migrated_db: str
) -> None:
    created = register(api_client, package)
    code = otp_code(migrated_db, created["id"])
    assert len(code) == 6
    assert code.isdigit()
    [(stored, expires_in)] = rows(
        migrated_db,
        "SELECT code_hash, extract(epoch FROM expires_at - now()) FROM registration_otps WHERE registration_id = %s",
        created["id"],
    )
    assert len(stored) == 32
    assert code.encode() not in bytes(stored)
    assert 590 < expires_in <= 600
    [(key, recipient, template, payload)] = rows(
        migrated_db,
        "SELECT dedupe_key, recipient, template, payload FROM notification_outbox WHERE registration_id = %s",
        created["id"],
    )
    assert (key, recipient, template) == (f"otp:{created['id']}:1", created["phone"], "registration_otp")
    assert payload["sensitive"] is True


def test_the_right_code_verifies_once(api_client: Client, package: dict[str, Any], migrated_db: str) -> None:
    created = register(api_client, package)
    path = f"/registrations/{created['id']}/verify"
    response = post(api_client, path, {"code": otp_code(migrated_db, created["id"])})
    assert response.status_code == 200, response.json_body
    assert response.json_body["status"] == "verified"
    assert rows(migrated_db, "SELECT 1 FROM registration_otps WHERE registration_id = %s", created["id"]) == []
    history = api_client.http.get(f"/registrations/{created['id']}", headers=token("cs")).json_body["history"]
    assert (history[-1]["action"], history[-1]["actor"]) == ("verify", "registrant")
    again = post(api_client, path, {"code": "123456"})
    assert again.status_code == 409
    assert again.json_body["error"]["details"]["current_status"] == "verified"


@pytest.mark.parametrize(("body", "status"), [({}, 401), ({"code": "12345"}, 400), ({"code": 123456}, 400)])
def test_verify_needs_a_well_formed_code_or_staff(
    api_client: Client, package: dict[str, Any], body: dict[str, Any], status: int
) -> None:
    created = register(api_client, package)
    assert post(api_client, f"/registrations/{created['id']}/verify", body).status_code == status


@pytest.mark.parametrize("body", [None, "", "{}"])
def test_staff_verify_without_a_body_as_they_approve(
    api_client: Client, package: dict[str, Any], body: str | None
) -> None:
    created = register(api_client, package)
    headers = {**token("cs")} if body is None else {**token("cs"), "Content-Type": "application/json"}
    response = api_client.http.post(f"/registrations/{created['id']}/verify", body=body, headers=headers)
    assert response.status_code == 200, response.json_body
    assert response.json_body["status"] == "verified"


def test_the_registrant_without_a_body_is_told_a_code_or_a_token_is_needed(
    api_client: Client, package: dict[str, Any]
) -> None:
    created = register(api_client, package)
    response = api_client.http.post(
        f"/registrations/{created['id']}/verify", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json_body["error"]["details"]["problems"][0]["problem"] == "a JSON object is required"


def test_five_wrong_codes_lock_the_code_until_a_new_one(
    api_client: Client, package: dict[str, Any], migrated_db: str
) -> None:
    created = register(api_client, package)
    path = f"/registrations/{created['id']}/verify"
    code = otp_code(migrated_db, created["id"])
    left = [
        post(api_client, path, {"code": wrong(code)}).json_body["error"]["details"]["attempts_left"] for _ in range(5)
    ]
    assert left == [4, 3, 2, 1, 0]
    locked = post(api_client, path, {"code": code})
    assert locked.status_code == 429, "even the right code, after five wrong ones"
    assert api_client.http.get(f"/registrations/{created['id']}", headers=token("cs")).json_body["status"] == (
        "pending_verification"
    )

    allow_resend(migrated_db, created["id"])
    assert post(api_client, f"/registrations/{created['id']}/resend-code", None).status_code == 200
    new_code = otp_code(migrated_db, created["id"])
    assert post(api_client, path, {"code": new_code}).status_code == 200


def test_an_expired_code_is_refused_without_counting(
    api_client: Client, package: dict[str, Any], migrated_db: str
) -> None:
    created = register(api_client, package)
    rows(migrated_db, "UPDATE registration_otps SET expires_at = now() - interval '1 s'")
    response = post(
        api_client, f"/registrations/{created['id']}/verify", {"code": otp_code(migrated_db, created["id"])}
    )
    assert response.status_code == 400
    assert response.json_body["error"]["details"] == {"expired": True}
    assert rows(migrated_db, "SELECT failed_attempts FROM registration_otps") == [(0,)]


def test_concurrent_guesses_are_counted_one_by_one(
    api_client: Client, package: dict[str, Any], migrated_db: str
) -> None:
    created = register(api_client, package)
    code = otp_code(migrated_db, created["id"])
    codes: list[str] = []
    barrier = threading.Barrier(10)

    def guess() -> None:
        from chalicelib.registrations.verification import verify_with_code

        with psycopg.connect(migrated_db, autocommit=True) as conn:
            barrier.wait()
            try:
                verify_with_code(conn, created["id"], wrong(code), OTP_KEY)
            except AppError as error:
                codes.append(error.code)

    threads = [threading.Thread(target=guess) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == ["invalid_code"] * 5 + ["too_many_requests"] * 5
    assert rows(migrated_db, "SELECT failed_attempts FROM registration_otps") == [(5,)]


def test_resend_once_a_minute_at_most_five_codes(api_client: Client, package: dict[str, Any], migrated_db: str) -> None:
    created = register(api_client, package)
    path = f"/registrations/{created['id']}/resend-code"
    first_code = otp_code(migrated_db, created["id"])
    too_soon = post(api_client, path, None)
    assert too_soon.status_code == 429
    assert 1 <= int(too_soon.headers["Retry-After"]) <= 60

    for number in range(2, 6):
        allow_resend(migrated_db, created["id"])
        response = post(api_client, path, None)
        assert response.status_code == 200, response.json_body
        assert response.json_body["expires_in_s"] == 600
        key = f"otp:{created['id']}:{number}"
        assert rows(migrated_db, "SELECT 1 FROM notification_outbox WHERE dedupe_key = %s", key)
    allow_resend(migrated_db, created["id"])
    assert post(api_client, path, None).status_code == 429, "five codes per registration"

    old = post(api_client, f"/registrations/{created['id']}/verify", {"code": first_code})
    assert old.status_code == 400, "a replaced code no longer works"


def test_resend_only_while_pending(api_client: Client, package: dict[str, Any], migrated_db: str) -> None:
    created = register(api_client, package)
    assert post(api_client, f"/registrations/{created['id']}/verify", {}, token("cs")).status_code == 200
    allow_resend(migrated_db, created["id"])
    response = post(api_client, f"/registrations/{created['id']}/resend-code", None)
    assert response.status_code == 409
    assert response.json_body["error"]["details"]["current_status"] == "verified"
    assert post(api_client, f"/registrations/{uuid.uuid4()}/resend-code", None).status_code == 404


def test_idempotency_key_replays_the_first_response(
    api_client: Client, package: dict[str, Any], migrated_db: str
) -> None:
    body = registration_body(package)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = post(api_client, "/registrations", body, key)
    second = post(api_client, "/registrations", {**body, "phone": "+62 " + body["phone"][1:]}, key)
    assert first.status_code == second.status_code == 201
    assert first.json_body == second.json_body, "the same body, in another spelling, replays"
    assert rows(migrated_db, "SELECT count(*) FROM customer_registrations") == [(1,)]
    assert rows(migrated_db, "SELECT count(*) FROM notification_outbox") == [(1,)], "one code sent"

    other = post(api_client, "/registrations", {**body, "city": "Surabaya"}, key)
    assert other.status_code == 422
    assert other.json_body["error"]["code"] == "idempotency_key_reused"
    assert rows(migrated_db, "SELECT count(*) FROM customer_registrations") == [(1,)]


def test_the_same_key_with_another_phone_is_another_key(api_client: Client, package: dict[str, Any]) -> None:
    """docs/api.md, "Idempotency keys": a key belongs to the phone, so another phone registers anew."""
    key = {"Idempotency-Key": "shared-key"}
    first = post(api_client, "/registrations", registration_body(package), key)
    second = post(api_client, "/registrations", registration_body(package), key)
    assert first.status_code == second.status_code == 201
    assert first.json_body["id"] != second.json_body["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\tinside"])
def test_malformed_idempotency_keys_are_400(api_client: Client, package: dict[str, Any], key: str) -> None:
    response = post(api_client, "/registrations", registration_body(package), {"Idempotency-Key": key})
    assert response.status_code == 400


def test_a_failed_request_does_not_use_up_its_key(api_client: Client, package: dict[str, Any]) -> None:
    body = registration_body(package)
    register(api_client, package, phone=body["phone"])
    key = {"Idempotency-Key": "retry-me"}
    assert post(api_client, "/registrations", body, key).status_code == 409
    assert post(api_client, "/registrations", {**body, "phone": "081311112222"}, key).status_code == 201


def test_concurrent_requests_with_one_key_create_one_registration(package: dict[str, Any], migrated_db: str) -> None:
    body = RegistrationIn.model_validate_json(json.dumps(registration_body(package)))
    outcomes: list[tuple[int, str]] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            barrier.wait()
            done = registrations.register(conn, body, OTP_KEY, "same-key", budget=BUDGET, stale_after=STALE_AFTER)
            outcomes.append((done.status, done.body["id"]))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 8
    assert len(set(outcomes)) == 1, outcomes
    assert rows(migrated_db, "SELECT count(*) FROM customer_registrations") == [(1,)]


def test_keys_are_forgotten_after_a_day(api_client: Client, package: dict[str, Any], migrated_db: str) -> None:
    key = {"Idempotency-Key": "old-key"}
    assert post(api_client, "/registrations", registration_body(package), key).status_code == 201
    rows(migrated_db, "UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
    event = api_client.events.generate_cw_event("Scheduled Event", "aws.events", {}, [])
    assert api_client.lambda_.invoke("purge_idempotency_keys", event).payload == {"purged": 1}
    assert post(api_client, "/registrations", registration_body(package), key).status_code == 201
