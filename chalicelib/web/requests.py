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
    """pydantic's ``error`` as our 400: each problem named by where it came from (``body.phone``, ``query.limit``),
    in the project's words (``problem_text``), never pydantic's."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        text = problem_text(item["type"], item["msg"], item.get("ctx") or {})
        problems.append(problem(source, ".".join(str(part) for part in item["loc"]), text))
    return BadRequestError(_MESSAGE_BY_SOURCE[source], {"problems": problems})


# pydantic's error types as the API says them; ``{name}`` is filled from the error's context.
PROBLEM_BY_TYPE: dict[str, str] = {
    "missing": "is required",
    "extra_forbidden": "is not a field this request takes",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "uuid_type": "must be a UUID, such as 3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "uuid_parsing": "must be a UUID, such as 3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "string_too_short": "must be at least {min_length} characters long",
    "string_too_long": "must be at most {max_length} characters long",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be greater than or equal to {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be less than or equal to {le}",
    "enum": "must be one of {expected}",
    "literal_error": "must be one of {expected}",
    "datetime_type": "must be a date-time with its offset, such as 2026-12-15T10:00:00+07:00",
    "datetime_parsing": "must be a date-time with its offset, such as 2026-12-15T10:00:00+07:00",
    "datetime_from_date_parsing": "must be a date-time with its offset, such as 2026-12-15T10:00:00+07:00",
    "timezone_aware": "must name its offset from UTC, such as +07:00",
    "date_type": "must be a date, such as 2026-12-15",
    "date_parsing": "must be a date, such as 2026-12-15",
    "date_from_datetime_parsing": "must be a date, such as 2026-12-15",
    "json_invalid": "is not valid JSON",
}
# A pattern's meaning, where a field has one (a field whose pattern is not here: "is not in the expected form").
_PROBLEM_BY_PATTERN = {
    r"^[0-9]{6}$": "must be six digits",
    r"\S": "must hold more than spaces",
}


def problem_text(kind: str, message: str, context: dict[str, Any]) -> str:
    """One problem in the project's words: a validator's own text (ours) as it is, pydantic's by its type."""
    for prefix in _PYDANTIC_PREFIXES:
        if message.startswith(prefix):  # our validators' ValueError: our words already
            return message.removeprefix(prefix)
    if kind == "json_invalid" and "recursion limit" in str(context.get("error", "")):
        return "is nested too deep (arrays or objects inside each other)"
    if kind == "string_pattern_mismatch":
        return _PROBLEM_BY_PATTERN.get(str(context.get("pattern")), "is not in the expected form")
    if kind == "string_too_short" and context.get("min_length") == 1:
        return "must not be empty"
    template = PROBLEM_BY_TYPE.get(kind)
    if template is None:
        return "is not valid"
    values = {name: _spoken(value) for name, value in context.items()}
    try:
        return template.format(**values)
    except (KeyError, IndexError):  # a context without the value the sentence names
        return "is not valid"


def _spoken(value: Any) -> str:
    # pydantic's enum context is "'a', 'b' or 'c'": the API lists values bare, comma-separated.
    text = str(value)
    return text.replace("'", "").replace(" or ", ", ")


def source_ip(request: Any) -> str | None:
    """The client's address as API Gateway saw it (``requestContext.identity.sourceIp``).

    Never a header: ``X-Forwarded-For`` is whatever the client wrote.
    """
    identity = (getattr(request, "context", None) or {}).get("identity") or {}
    address = identity.get("sourceIp")
    return str(address) if address else None
