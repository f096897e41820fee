"""Request input: bodies refused when empty or too large, then parsed by their pydantic model;
query parameters parsed by theirs.  Bad input is ``BadRequestError`` (400 ``invalid_input``) whose
``details.problems`` name each field with where it came from (``body.phone``, ``query.limit``)."""

from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.errors import BadRequestError, PayloadTooLargeError, problem

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

MAX_BODY_BYTES = 16 * 1024
Model = TypeVar("Model", bound="BaseModel")

_MESSAGE_BY_SOURCE = {
    "body": "the request body is not valid",
    "query": "a query parameter is not valid",
    "path": "a path parameter is not valid",
    "header": "a header is not valid",
}
# pydantic prefixes the text of a ValueError raised in a validator; the client needs only the text.
_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


def parse_body(raw: bytes | None, model: type[Model]) -> Model:
    """``raw`` as ``model``: raises ``PayloadTooLargeError`` (413), and ``BadRequestError`` (400)
    when it is empty or not what ``model`` takes."""
    from pydantic import ValidationError

    parse_size(raw)
    try:
        return model.model_validate_json(raw or b"")
    except ValidationError as error:
        raise invalid_input(error, "body") from None


def parse_query(params: dict[str, Any] | None, model: type[Model]) -> Model:
    """The query parameters as ``model``; ``BadRequestError`` (400) naming each bad one."""
    from pydantic import ValidationError

    try:
        return model.model_validate(dict(params or {}))
    except ValidationError as error:
        raise invalid_input(error, "query") from None


def parse_size(raw: bytes | None) -> None:
    """Refuse an empty or oversized body before parsing it; pydantic reports the rest."""
    if raw is not None and len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not raw:
        problems = [problem("body", "", "a JSON object is required")]
        raise BadRequestError(_MESSAGE_BY_SOURCE["body"], {"problems": problems})


def invalid_input(error: "ValidationError", source: str) -> BadRequestError:
    """pydantic's ``error`` as our 400: each problem named by where it came from (``body.phone``, ``query.limit``)."""
    problems = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        text = item["msg"]
        for prefix in _PYDANTIC_PREFIXES:
            text = text.removeprefix(prefix)
        if item["type"] == "json_invalid":
            text = "is not valid JSON"
        elif item["type"] == "extra_forbidden":
            text = "is not a field this request takes"
        problems.append(problem(source, ".".join(str(part) for part in item["loc"]), text))
    return BadRequestError(_MESSAGE_BY_SOURCE[source], {"problems": problems})


def source_ip(request: Any) -> str | None:
    """The client's address as API Gateway saw it (``requestContext.identity.sourceIp``).

    Never a header: ``X-Forwarded-For`` is whatever the client wrote.
    """
    identity = (getattr(request, "context", None) or {}).get("identity") or {}
    address = identity.get("sourceIp")
    return str(address) if address else None
