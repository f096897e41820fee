"""No personal data in the logs, even from a write the database refuses: psycopg's error text
("Failing row contains (…)") holds the whole row, names and addresses with it; the log holds the
SQLSTATE, the table and the constraint instead.  The session's scan (tests/support/pii_scan.py)
looks for the same names and addresses in every line of the suite."""

import json
import logging
from typing import Any

import psycopg
import pytest
from chalice.test import Client

from chalicelib.platform import logs
from tests.support.api import post, registration_body
from tests.support.pii_scan import EMAIL, NAME_OR_ADDRESS, PHONE

NAME = "Dewi Lestari"


def test_a_refused_write_logs_what_failed_and_nothing_of_the_person(
    api_client: Client, package: dict[str, Any], migrated_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A constraint the code does not know of (the incident's kind of failure): the insert fails.
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE customer_registrations ADD CONSTRAINT no_new_rows CHECK (city <> 'Nowhere')")
    caplog.set_level(logging.INFO)
    body = registration_body(package, full_name="Dewi Lestari", address="Jl. Kenanga No. 9", city="Nowhere")
    response = post(api_client, "/registrations", body)
    assert response.status_code == 500
    lines = "\n".join(logs.JsonFormatter().format(record) for record in caplog.records)
    assert "SQLSTATE 23514" in lines, "what failed: the SQLSTATE"
    assert "constraint no_new_rows" in lines
    assert "table customer_registrations" in lines
    assert NAME_OR_ADDRESS.findall(lines) == []
    assert PHONE.findall(lines) == []
    assert EMAIL.findall(lines) == []
    assert "Failing row" not in lines


def test_a_database_error_passed_as_an_argument_is_logged_by_its_sqlstate(
    migrated_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    logs.configure()
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        try:
            conn.execute("SELECT %s::uuid", (NAME,))
        except psycopg.Error as error:
            logging.getLogger("t").warning("the read failed: %s", error)
            logging.getLogger("t").exception("and again")
    text = "\n".join(logs.JsonFormatter().format(record) for record in caplog.records)
    assert "SQLSTATE 22P02" in text
    assert NAME not in text
    assert json.loads(logs.JsonFormatter().format(caplog.records[0]))["message"].startswith("the read failed: psycopg")
