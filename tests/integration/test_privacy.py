"""The public POST /registrations is no oracle: a taken phone or e-mail answers 409 and nothing more.

Whichever detail is taken, and whatever the registration's status, the anonymous caller gets the
same answer; the registrant learns the rest on their own phone (a WhatsApp message with the
registration's id and status), at most once a minute and five times in all.
"""

import uuid
from datetime import timedelta
from typing import Any

import psycopg
from chalice.test import Client

from chalicelib.registrations import repository
from chalicelib.registrations.service import STATUS_TEMPLATE
from devstack.whatsapp import FakeWhatsApp
from tests.integration.test_end_to_end import app_whatsapp
from tests.integration.test_end_to_end import texts as message_texts
from tests.support.api import force_status, post, register, registration_body

__all__ = ["app_whatsapp"]  # a fixture

# What may differ between two answers to the same kind of request: the request's own id.
VARYING_HEADERS = {"x-request-id", "x-amzn-requestid"}


def answer(response: Any) -> tuple[int, Any, dict[str, str]]:
    headers = {k.lower(): v for k, v in response.headers.items() if k.lower() not in VARYING_HEADERS}
    return response.status_code, response.json_body, headers


def status_messages(url: str) -> list[tuple[str, str, list[str]]]:
    """(recipient, registration id, the message's texts) of every status message in the outbox."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT recipient, registration_id::text, payload FROM notification_outbox WHERE template = %s",
            (STATUS_TEMPLATE,),
        ).fetchall()
    return [(r[0], r[1], [p["text"] for p in r[2]["components"][0]["parameters"]]) for r in rows]


def test_a_taken_phone_or_e_mail_answers_the_same_409_whatever_is_taken_and_whatever_its_status(
    api_client: Client, package: dict[str, Any], migrated_db: str
) -> None:
    owner = register(api_client, package)
    answers = []
    for status in ("pending_verification", "survey_scheduled", "approved"):
        force_status(migrated_db, owner["id"], status)
        for taken in ("phone", "email"):
            attempt = registration_body(package, **{taken: owner[taken]})
            answers.append(answer(post(api_client, "/registrations", attempt)))
    first = answers[0]
    assert first[0] == 409
    assert first[1] == {
        "error": {
            "code": "duplicate_registration",
            "message": "these details cannot be used for a new registration now; if you registered before, "
            "a WhatsApp message to your phone says where your registration stands",
            "details": {},
        }
    }
    assert all(a == first for a in answers), "the answer names neither the field nor the status"
    # A free phone and e-mail: the only difference the caller sees is that it works.
    assert post(api_client, "/registrations", registration_body(package)).status_code == 201


def test_the_registrant_learns_the_status_on_their_own_phone(
    api_client: Client, package: dict[str, Any], migrated_db: str
) -> None:
    owner = register(api_client, package)
    force_status(migrated_db, owner["id"], "survey_scheduled")
    someone = registration_body(package, email=owner["email"])  # another phone, the owner's e-mail
    for _ in range(3):
        assert post(api_client, "/registrations", someone).status_code == 409
    sent = status_messages(migrated_db)
    assert 1 <= len(sent) <= 2, "once a minute (two if the minute turned during the test)"
    for recipient, registration_id, texts in sent:
        assert recipient == owner["phone"], "to the registration's phone, never to the caller's"
        assert registration_id == owner["id"]
        assert texts[:2] == [owner["id"], "survey_scheduled"]
        assert texts[2].endswith(" WIB")


def test_status_messages_are_limited_like_one_time_codes(
    api_client: Client, package: dict[str, Any], migrated_db: str
) -> None:
    owner = register(api_client, package)
    other_email = f"nobody-{uuid.uuid4().hex[:6]}@example.com"
    with psycopg.connect(migrated_db, autocommit=True) as conn:

        def tell() -> list[uuid.UUID]:
            return repository.tell_owners(conn, owner["phone"], other_email, STATUS_TEMPLATE, timedelta(hours=1), 2)

        def next_period(n: int) -> None:  # as if the hour turned: the rows so far belong to an earlier one
            conn.execute(
                "UPDATE notification_outbox SET dedupe_key = dedupe_key || %s "
                "WHERE template = %s AND dedupe_key NOT LIKE '%%:earlier%%'",
                (f":earlier{n}", STATUS_TEMPLATE),
            )

        assert len(tell()) == 1
        assert tell() == [], "one per period"
        next_period(1)
        assert len(tell()) == 1, "the next period"
        next_period(2)
        assert tell() == [], "at most two in all"
    assert len(status_messages(migrated_db)) == 2


def test_the_status_message_fits_its_template_and_reaches_whatsapp(
    api_client: Client, package: dict[str, Any], app_whatsapp: FakeWhatsApp, migrated_db: str
) -> None:
    owner = register(api_client, package)
    force_status(migrated_db, owner["id"], "approved")
    assert post(api_client, "/registrations", registration_body(package, phone=owner["phone"])).status_code == 409
    [message] = [m for m in app_whatsapp.delivered if m.body["template"]["name"] == STATUS_TEMPLATE]
    assert message.body["to"] == owner["phone"].lstrip("+")
    assert message_texts(message)[:2] == [owner["id"], "approved"]
    with psycopg.connect(migrated_db) as conn:
        row = conn.execute(
            "SELECT status, last_error FROM notification_outbox WHERE template = %s", (STATUS_TEMPLATE,)
        ).fetchone()
    assert row == ("sent", None), "the sender found the template (chalicelib/message_templates.py)"
