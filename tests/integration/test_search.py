"""Staff search: ``GET /registrations?q=`` by phone (any spelling), e-mail (any case) or part of a name;
``city`` in any case; ``created_from``/``created_to`` as a date or a date-time; keyset pages with ``q``."""

import uuid
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
from chalice.test import Client

from tests.support.api import force_status, register, token


def ids(api_client: Client, **query: Any) -> list[str]:
    response = api_client.http.get(f"/registrations?{urlencode(query)}", headers=token("cs"))
    assert response.status_code == 200, response.json_body
    return [item["id"] for item in response.json_body["items"]]


@pytest.mark.parametrize("spelling", ["0812{n}", "+62812{n}", "+62 812-{a}-{b}", "62812{n}", "(0812) {a} {b}"])
def test_a_phone_in_any_spelling_finds_the_registration(
    api_client: Client, package: dict[str, Any], spelling: str
) -> None:
    n = f"{uuid.uuid4().int % 10**8:08d}"
    mine = register(api_client, package, phone=f"0812{n}")
    register(api_client, package)  # someone else
    assert ids(api_client, q=spelling.format(n=n, a=n[:4], b=n[4:])) == [mine["id"]]


def test_an_e_mail_in_any_letter_case_finds_every_registration_of_it_newest_first(
    api_client: Client, package: dict[str, Any], migrated_db: str
) -> None:
    email = f"Siti.{uuid.uuid4().hex[:8]}@Example.co.id"
    first = register(api_client, package, email=email)
    force_status(migrated_db, first["id"], "cancelled")  # closed: the address may register again
    second = register(api_client, package, email=email.lower())
    assert ids(api_client, q=email.upper()) == [second["id"], first["id"]]
    assert ids(api_client, q=email.upper(), status="cancelled") == [first["id"]]


def test_part_of_a_name_in_any_letter_case_with_keyset_pages(api_client: Client, package: dict[str, Any]) -> None:
    family = f"Wijaya{uuid.uuid4().hex[:6]}"
    created = [register(api_client, package, full_name=f"Budi {family} {i}")["id"] for i in range(5)]
    register(api_client, package, full_name="Siti Nurhaliza")
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        query = {"q": family[2:].upper(), "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = api_client.http.get(f"/registrations?{urlencode(query)}", headers=token("cs")).json_body
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created)), "newest first, each exactly once"


def test_like_wildcards_in_a_name_part_are_literal(api_client: Client, package: dict[str, Any]) -> None:
    mark = uuid.uuid4().hex[:6]
    literal = register(api_client, package, full_name=f"Ani 100%_{mark}")
    register(api_client, package, full_name=f"Ani 100xx{mark}")
    assert ids(api_client, q=f"100%_{mark}") == [literal["id"]]


def test_the_city_filter_ignores_letter_case(api_client: Client, package: dict[str, Any]) -> None:
    city = f"Kota{uuid.uuid4().hex[:6]}"
    mine = register(api_client, package, city=city)
    assert ids(api_client, city=city.upper()) == [mine["id"]]
    assert ids(api_client, city=city.lower()) == [mine["id"]]


def test_created_from_and_to_take_a_date_or_a_date_time(
    api_client: Client, package: dict[str, Any], migrated_db: str
) -> None:
    city = f"Kota{uuid.uuid4().hex[:6]}"
    early, late = register(api_client, package, city=city), register(api_client, package, city=city)
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        # 23:30 WIB on 29 November and 00:30 WIB on 30 November.
        conn.execute(
            "UPDATE customer_registrations SET created_at = '2026-11-29T16:30:00Z' WHERE id = %s", (early["id"],)
        )
        conn.execute(
            "UPDATE customer_registrations SET created_at = '2026-11-29T17:30:00Z' WHERE id = %s", (late["id"],)
        )
    assert ids(api_client, city=city, created_from="2026-11-30") == [late["id"]], "a date is a day in WIB (UTC+7)"
    assert ids(api_client, city=city, created_to="2026-11-29") == [early["id"]], "created_to takes its whole day"
    assert ids(api_client, city=city, created_from="2026-11-29", created_to="2026-11-30") == [late["id"], early["id"]]
    assert ids(api_client, city=city, created_from="2026-11-29T17:00:00Z") == [late["id"]]
    assert ids(api_client, city=city, created_to="2026-11-30T00:00:00") == [early["id"]], "no offset: WIB"


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"q": "ab"}, "at least 3 characters"),
        ({"q": "0812 1234"}, "not an Indonesian mobile number"),
        ({"created_from": "2026-02-30"}, "is not a date that exists"),
        ({"created_from": "yesterday"}, "ISO 8601 date"),
        ({"limit": "500"}, "less than or equal to 100"),
        ({"status": "done"}, "pending_verification"),
    ],
)
def test_a_bad_query_parameter_is_named_as_one(api_client: Client, query: dict[str, str], problem: str) -> None:
    response = api_client.http.get(f"/registrations?{urlencode(query)}", headers=token("cs"))
    assert response.status_code == 400
    error = response.json_body["error"]
    assert error["code"] == "invalid_input"
    assert "query" in error["message"]
    [item] = error["details"]["problems"]
    assert item["field"] == f"query.{next(iter(query))}"
    assert problem in item["problem"]
    assert not item["problem"].startswith("Value error")
