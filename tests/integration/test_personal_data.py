"""Personal data: the daily purge, export and erasure on request, and the proof that nothing of the
person is left in any text or JSON column of any table (read from the catalog, so a new table or
column is scanned too)."""

import json
import logging
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from chalice.test import Client

from chalicelib.platform.logs import JsonFormatter
from tests.support.api import force_status, post, register, registration_body, token

ADMIN = token("admin")


def person(client: Client, package: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A registration whose person is named everywhere a person can be: the notes, the reasons, an
    idempotent replay, a status message (a second registration tried with their e-mail)."""
    unique = uuid.uuid4().hex[:8]
    body = registration_body(
        package,
        full_name=f"Dewi Lestari{unique}",
        address=f"Jl. Kenanga {unique} No. 7",
        notes=f"call Dewi Lestari{unique} before noon",
        **changes,
    )
    created = post(client, "/registrations", body, {"Idempotency-Key": f"key-{unique}"})
    assert created.status_code == 201, created.json_body
    registration: dict[str, Any] = created.json_body
    again = registration_body(package, email=registration["email"])
    assert post(client, "/registrations", again).status_code == 409  # a status message to their phone
    return {**body, **registration}


def values_of(registration: dict[str, Any]) -> list[str]:
    """What identifies the person, in every spelling the code may have stored."""
    phone = registration["phone"]  # +62812…
    return [
        registration["full_name"],
        registration["email"],
        phone,
        phone[1:],
        "0" + phone[3:],
        registration["address"],
    ]


def text_columns(conn: "psycopg.Connection[Any]") -> list[tuple[str, str]]:
    """(table, column) of every text-like and JSON column of every table in the schema, from the catalog."""
    rows = conn.execute(
        """
        SELECT c.table_name, c.column_name FROM information_schema.columns c
          JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
           AND (c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')
                OR c.udt_name IN ('_text', '_varchar'))
         ORDER BY 1, 2
        """
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def holding(url: str, values: list[str]) -> list[str]:
    """Every table.column where any of ``values`` appears (in any letter case)."""
    found = []
    with psycopg.connect(url) as conn:
        columns = text_columns(conn)
        assert ("customer_registrations", "full_name") in columns
        assert ("notification_outbox", "payload") in columns
        for table, column in columns:
            for value in values:
                sql = f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE %s'
                row = conn.execute(sql.encode(), (f"%{value}%",)).fetchone()
                if row and row[0]:
                    found.append(f"{table}.{column} holds {value!r}")
    return found


def rows(url: str, sql: str, params: Any = ()) -> list[Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql.encode(), params)
        return cursor.fetchall() if cursor.description else []


def cancel(client: Client, registration: dict[str, Any], reason: str) -> None:
    response = post(client, f"/registrations/{registration['id']}/cancel", {"reason": reason}, token("cs"))
    assert response.status_code == 200, response.json_body


def age(url: str, registration_id: str, days: int) -> None:
    """As if the last status change, and every message, were ``days`` old."""
    rows(
        url,
        "UPDATE customer_registrations SET updated_at = now() - make_interval(days => %s) WHERE id = %s",
        (days, registration_id),
    )
    rows(
        url,
        "UPDATE notification_outbox SET created_at = now() - make_interval(days => %s) WHERE registration_id = %s",
        (days, registration_id),
    )


def purge(client: Client) -> Any:
    event = client.events.generate_cw_event("Scheduled Event", "aws.events", {}, [])
    return client.lambda_.invoke("purge_personal_data", event).payload


def test_the_purge_erases_what_ended_without_a_customer_past_retention_and_nothing_else(
    api_client: Client, package: dict[str, Any], migrated_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    old = person(api_client, package)
    cancel(api_client, old, f"{old['full_name']} moved away, phone {old['phone']}")
    recent = person(api_client, package)
    cancel(api_client, recent, "moved")
    active = person(api_client, package)
    age(migrated_db, old["id"], 91)
    age(migrated_db, recent["id"], 89)
    age(migrated_db, active["id"], 200)
    force_status(migrated_db, active["id"], "survey_scheduled")
    history_before = rows(
        migrated_db, "SELECT count(*) FROM registration_status_history WHERE registration_id = %s", (old["id"],)
    )
    capsys.readouterr()

    assert purge(api_client) == {"registrations_erased": 1, "outbox_rows_deleted": 2, "batches": 2, "complete": 1}

    assert holding(migrated_db, values_of(old)) == [], "nothing of the person is left anywhere"
    assert holding(migrated_db, values_of(recent)) != [], "within retention: kept"
    assert holding(migrated_db, values_of(active)) != [], "active: kept"
    kept = rows(
        migrated_db, "SELECT status, created_at IS NOT NULL FROM customer_registrations WHERE id = %s", (old["id"],)
    )
    assert kept == [("cancelled", True)], "the row, its status and times stay"
    assert (
        rows(migrated_db, "SELECT count(*) FROM registration_status_history WHERE registration_id = %s", (old["id"],))
        == history_before
    ), "the history rows stay, their reasons gone"
    assert rows(
        migrated_db, "SELECT erased_by FROM personal_data_erasures WHERE registration_id = %s", (old["id"],)
    ) == [("retention",)]
    [metrics] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert metrics["PersonalDataPurged"] == 1
    assert purge(api_client)["registrations_erased"] == 0, "idempotent: nothing is erased twice"


def test_the_purge_is_batched_and_stops_within_its_time(
    api_client: Client, package: dict[str, Any], migrated_db: str
) -> None:
    from chalicelib.privacy import service

    ended = [person(api_client, package) for _ in range(3)]
    for registration in ended:
        cancel(api_client, registration, "moved")
        age(migrated_db, registration["id"], 100)
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        stopped = service.purge(conn, timedelta(days=90), batch_size=2, time_budget_s=-1)
        assert stopped["complete"] == 0
        assert stopped["registrations_erased"] == 0
        done = service.purge(conn, timedelta(days=90), batch_size=2)
    assert done["registrations_erased"] == 3
    assert done["batches"] >= 2


def test_export_holds_everything_about_the_person_and_their_other_registrations(
    api_client: Client, package: dict[str, Any], migrated_db: str
) -> None:
    first = person(api_client, package)
    cancel(api_client, first, "moved")
    second = register(api_client, package, phone=first["phone"])  # the same person, again
    stranger = register(api_client, package)
    response = api_client.http.get(f"/registrations/{first['id']}/personal-data", headers=ADMIN)
    assert response.status_code == 200, response.json_body
    document = response.json_body
    assert document["registration"]["full_name"] == first["full_name"]
    assert document["registration"]["address"] == first["address"]
    assert [h["action"] for h in document["history"]] == ["register", "cancel"]
    assert {m["template"] for m in document["messages"]} == {"registration_otp", "registration_status"}
    assert all("components" not in m["payload"] for m in document["messages"] if m["template"] == "registration_otp")
    assert document["customer"] is None
    assert document["ticket"] is None
    others = [o["registration"]["id"] for o in document["other_registrations"]]
    assert others == [second["id"]], "matched by phone; a stranger is not there"
    assert stranger["id"] not in json.dumps(document)


def test_erasure_on_request_erases_at_once_records_it_and_answers_the_same_twice(
    api_client: Client, package: dict[str, Any], migrated_db: str
) -> None:
    someone = person(api_client, package)  # active: pending verification
    reason = f"asked by {someone['full_name']} on the phone ({someone['phone']}), e-mail {someone['email']}"
    path = f"/registrations/{someone['id']}/personal-data"
    first = api_client.http.delete(
        path, body=json.dumps({"reason": reason}), headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert first.status_code == 200, first.json_body
    assert first.json_body["status"] == "cancelled", "an active registration cannot go on without its data"
    again = api_client.http.delete(
        path, body=json.dumps({"reason": "again"}), headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert (again.status_code, again.json_body) == (200, first.json_body)
    assert holding(migrated_db, values_of(someone)) == []
    [record] = rows(migrated_db, "SELECT erased_by, reason, erased_at FROM personal_data_erasures")
    assert record[0].startswith("user-"), "who: the admin's subject"
    assert record[1].startswith("asked by [erased]"), "why, without the person's details"
    exported = api_client.http.get(path, headers=ADMIN).json_body
    assert exported["erasure"]["erased_by"] == record[0]
    assert exported["other_registrations"] == []


def test_a_customer_is_not_erased(api_client: Client, package: dict[str, Any], migrated_db: str) -> None:
    customer = register(api_client, package)
    force_status(migrated_db, customer["id"], "customer_created")
    response = api_client.http.delete(
        f"/registrations/{customer['id']}/personal-data",
        body=json.dumps({"reason": "asked"}),
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert response.status_code == 409
    assert response.json_body["error"]["code"] == "customer_data_kept"
    assert "customer" in response.json_body["error"]["message"]
    assert rows(migrated_db, "SELECT email FROM customer_registrations WHERE id = %s", (customer["id"],)) == [
        (customer["email"],)
    ]
    assert rows(migrated_db, "SELECT count(*) FROM personal_data_erasures") == [(0,)]


@pytest.mark.parametrize("role", ["cs", "surveyor", "approver", None])
def test_export_and_erasure_are_admin_only(api_client: Client, package: dict[str, Any], role: str | None) -> None:
    registration = register(api_client, package)
    path = f"/registrations/{registration['id']}/personal-data"
    headers = {"Content-Type": "application/json", **(token(role) if role else {})}
    expected = 403 if role else 401
    assert api_client.http.get(path, headers=headers).status_code == expected
    erase = api_client.http.delete(path, body=json.dumps({"reason": "asked"}), headers=headers)
    assert erase.status_code == expected


def test_staff_reads_are_on_record_without_personal_data(
    api_client: Client, package: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    registration = register(api_client, package)
    caplog.set_level(logging.INFO, logger="registration.request")
    cs = token("cs", sub="cs-worker-1")
    assert api_client.http.get(f"/registrations/{registration['id']}", headers=cs).status_code == 200
    assert api_client.http.get("/registrations?limit=1", headers=cs).status_code == 200
    assert api_client.http.get(f"/registrations/{registration['id']}/personal-data", headers=ADMIN).status_code == 200
    assert api_client.http.get("/packages").status_code == 200  # public, no personal data: no access record
    requests = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "registration.request"]
    [public] = [line for line in requests if line["route"] == "GET /packages"]
    assert "registration_ids" not in public
    assert "subject" not in public
    lines = [line for line in requests if "registration_ids" in line]
    assert [line["route"] for line in lines] == [
        "GET /registrations/{registration_id}",
        "GET /registrations",
        "GET /registrations/{registration_id}/personal-data",
    ]
    first = lines[0]
    assert (first["subject"], first["roles"], first["registration_ids"]) == (
        "cs-worker-1",
        ["cs"],
        [registration["id"]],
    )
    assert first["correlation_id"], "the request's id"
    text = json.dumps(lines)
    assert not any(value in text for value in values_of(registration))
