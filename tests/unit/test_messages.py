"""The pinned ``create_customer`` message: exactly its shape, nothing looser."""

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from chalicelib.customers.messages import BadMessageError, CreateCustomer

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"type": "create_customer", "registration_id": "5f0c3a52-8d47-4f2e-9a51-0c6b2f1e7d30", "requested_by": "ani"}


def test_the_pinned_body_round_trips() -> None:
    message = CreateCustomer.parse(json.dumps(GOOD))
    assert message.registration_id == uuid.UUID(GOOD["registration_id"])
    assert message.to_body() == GOOD


@pytest.mark.parametrize(
    "changes",
    [
        {"type": "create-customer"},
        {"registration_id": "not-a-uuid"},
        {"registration_id": 42},
        {"requested_by": ""},
        {"requested_by": 7},
        {"status": "customer_created"},
        {"type": None},
        {"registration_id": None},
        {"requested_by": "x" * 201},
        {"requested_by": ["ani"]},
    ],
)
def test_anything_else_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(BadMessageError):
        CreateCustomer.parse(json.dumps({**GOOD, **changes}))


@pytest.mark.parametrize("missing", sorted(GOOD))
def test_every_field_is_required(missing: str) -> None:
    with pytest.raises(BadMessageError):
        CreateCustomer.parse(json.dumps({k: v for k, v in GOOD.items() if k != missing}))


@pytest.mark.parametrize("body", [None, "", "not json", "[]", '"create_customer"', "null", "{"])
def test_a_body_that_is_not_a_json_object_is_refused(body: str | None) -> None:
    with pytest.raises(BadMessageError) as refused:
        CreateCustomer.parse(body)
    assert refused.value.problems[0][0] == "body"


def test_every_problem_is_named() -> None:
    with pytest.raises(BadMessageError) as refused:
        CreateCustomer.parse(json.dumps({"type": "x", "registration_id": 1, "extra": True}))
    assert sorted(field for field, _ in refused.value.problems) == ["extra", "registration_id", "requested_by", "type"]


def test_a_new_message_is_held_to_the_same_rules() -> None:
    registration = uuid.UUID(GOOD["registration_id"])
    assert CreateCustomer.new(registration, "ani").to_body() == GOOD
    with pytest.raises(BadMessageError):
        CreateCustomer.new(registration, "")


def test_the_worker_path_imports_no_pydantic() -> None:
    # Cold start: the worker reads its message with the standard library (bench/RESULTS.md,
    # "Cold start"); the API's routes import pydantic at first use, the worker never.
    code = (
        "import sys, app\n"
        "from chalicelib.customers import service\n"
        "from chalicelib.notifications import service as notifications\n"
        f"service.CreateCustomer.parse({json.dumps(json.dumps(GOOD))})\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'psycopg', 'boto3', 'email_validator'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[-2] == "[]", done.stdout
