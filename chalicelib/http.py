"""The one place errors become HTTP responses: ``{"error": {"code", "message", "details"}}``."""

import logging
from typing import TYPE_CHECKING, Any

from chalicelib.errors import AppError, BadRequestError, PayloadTooLargeError, problem

if TYPE_CHECKING:
    from pydantic import ValidationError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
RETRY_AFTER_S = "5"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def translate(error: Exception) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) for ``error``; unknown errors are a logged 500 that says nothing inside."""
    from pydantic import ValidationError

    if isinstance(error, AppError):
        headers = {"Retry-After": str(error.retry_after_s)} if error.retry_after_s is not None else {}
        return error.status, error_body(error.code, error.message, error.details), headers
    if isinstance(error, ValidationError):  # a body model not parsed through ``parse_input``
        return translate(invalid_input(error, "body"))
    if _is_database_down(error):
        log.warning("database unavailable: %s", type(error).__name__)
        body = error_body("service_unavailable", "the database is unavailable; nothing was changed, try again")
        return 503, body, {"Retry-After": RETRY_AFTER_S}
    log.exception("unhandled error")
    return 500, error_body("internal_error", "an internal error occurred"), {}


_MESSAGE_BY_SOURCE = {
    "body": "the request body is not valid",
    "query": "a query parameter is not valid",
    "path": "a path parameter is not valid",
    "header": "a header is not valid",
}
# pydantic prefixes the text of a ValueError raised in a validator; the client needs only the text.
_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


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
        field = ".".join(str(part) for part in item["loc"])
        problems.append(problem(source, field, text))
    return BadRequestError(_MESSAGE_BY_SOURCE[source], {"problems": problems})


def parse_size(raw: bytes | None) -> None:
    """Refuse an empty or oversized body before parsing it; pydantic reports the rest."""
    if raw is not None and len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not raw:
        raise BadRequestError("a JSON object body is required")


def _is_database_down(error: Exception) -> bool:
    import psycopg

    return isinstance(error, psycopg.OperationalError)
