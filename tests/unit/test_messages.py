"""The pinned ``create_customer`` message: exactly its shape, nothing looser."""

import json
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.customers.messages import CreateCustomer

GOOD = {"type": "create_customer", "registration_id": "5f0c3a52-8d47-4f2e-9a51-0c6b2f1e7d30", "requested_by": "ani"}


def test_the_pinned_body_round_trips() -> None:
    message = CreateCustomer.model_validate_json(json.dumps(GOOD))
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
    ],
)
def test_anything_else_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CreateCustomer.model_validate_json(json.dumps({**GOOD, **changes}))


@pytest.mark.parametrize("missing", sorted(GOOD))
def test_every_field_is_required(missing: str) -> None:
    with pytest.raises(ValidationError):
        CreateCustomer.model_validate_json(json.dumps({k: v for k, v in GOOD.items() if k != missing}))
