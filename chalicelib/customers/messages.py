"""Queue messages: the pinned shapes, and nothing else.

Read with the standard library, not pydantic: the worker needs nothing else of pydantic,
and importing it and building one model was the largest part of what the worker's cold
start added to the framework's (bench/RESULTS.md, "Cold start").  The rules are
pydantic's strict mode for this shape: a JSON object with exactly these three keys, no
coercion (a number is not a string), ``type`` the one literal, ``registration_id`` a
UUID, ``requested_by`` 1 to 200 characters.
"""

import json
from typing import Any, NamedTuple
from uuid import UUID

CREATE_CUSTOMER = "create_customer"
REQUESTED_BY_MAX = 200
_FIELDS = ("type", "registration_id", "requested_by")


class BadMessageError(ValueError):
    """A body that is not the pinned message; ``problems`` lists each ``(field, problem)``."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {problem}" for field, problem in problems))
        self.problems = problems


class CreateCustomer(NamedTuple):
    """Turn an approved registration into a customer (``customer_worker``'s message, pinned).

    Make one with ``CreateCustomer.new`` (checked like a parsed one), read one with ``parse``.
    """

    type: str
    registration_id: UUID
    requested_by: str

    @classmethod
    def new(cls, registration_id: UUID, requested_by: str) -> "CreateCustomer":
        """The message for ``registration_id``; raises ``BadMessageError`` for a ``requested_by`` it may not carry."""
        return cls.parse(json.dumps(cls(CREATE_CUSTOMER, registration_id, requested_by).to_body()))

    @classmethod
    def parse(cls, body: str | bytes | None) -> "CreateCustomer":
        """The message in an SQS body; raises ``BadMessageError`` naming every problem."""
        try:
            data = json.loads(body) if body is not None else None
        except ValueError:
            raise BadMessageError([("body", "not JSON")]) from None
        if not isinstance(data, dict):
            raise BadMessageError([("body", "not a JSON object")])
        problems = [(key, "not a field of this message") for key in data if key not in _FIELDS]
        problems += [(key, "required") for key in _FIELDS if key not in data]
        kind, registration_id, requested_by = (data.get(key) for key in _FIELDS)
        if "type" in data and kind != CREATE_CUSTOMER:
            problems.append(("type", f"must be {CREATE_CUSTOMER!r}"))
        parsed = _uuid(registration_id)
        if "registration_id" in data and parsed is None:
            problems.append(("registration_id", "must be a UUID in a string"))
        if "requested_by" in data and not (
            isinstance(requested_by, str) and 1 <= len(requested_by) <= REQUESTED_BY_MAX
        ):
            problems.append(("requested_by", f"must be a string of 1 to {REQUESTED_BY_MAX} characters"))
        if problems or parsed is None or not isinstance(requested_by, str):
            raise BadMessageError(problems)
        return cls(CREATE_CUSTOMER, parsed, requested_by)

    def to_body(self) -> dict[str, str]:
        """The JSON object sent to the queue."""
        return {"type": self.type, "registration_id": str(self.registration_id), "requested_by": self.requested_by}


def _uuid(value: Any) -> UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return UUID(value)
    except ValueError:
        return None
