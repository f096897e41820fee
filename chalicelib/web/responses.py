"""The one place errors become HTTP responses: ``{"error": {"code", "message", "details"}}``."""

import logging
from typing import Any

from chalicelib.errors import AppError, TransitionNotAllowedError
from chalicelib.platform import emf

log = logging.getLogger(__name__)

RETRY_AFTER_S = "5"


# Chalice answers some requests itself ({"Code": "UnsupportedMediaType", "Message": ...}); their codes
# in our table, by status, and what we say instead of Chalice's text.
_CODE_BY_CHALICE_STATUS = {
    400: ("invalid_input", "the request body is not valid"),
    404: ("not_found", "no such path, or no such method on it"),
    405: ("method_not_allowed", "this path does not take {method}"),
    413: ("payload_too_large", f"the body is larger than {16 * 1024} bytes"),
    415: ("unsupported_media_type", "send the body as application/json"),
}


def chalice_error_body(status: int, method: str = "", allowed: str = "") -> dict[str, Any]:
    """One of Chalice's own error answers in our envelope and words (its ``Message`` is dropped):
    our code for its status; a 405 names the method and, in ``details.allowed_methods``, the ones the path takes."""
    code, message = _CODE_BY_CHALICE_STATUS.get(status, ("internal_error", "an internal error occurred"))
    details: dict[str, Any] = {}
    if status == 405:
        message = message.format(method=method or "this method")
        details = {"allowed_methods": [m.strip() for m in allowed.split(",") if m.strip()]}
    return error_body(code, message, details)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def translate(error: Exception) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) for ``error``; unknown errors are a logged 500 that says nothing inside."""
    from pydantic import ValidationError

    if isinstance(error, AppError):
        if isinstance(error, TransitionNotAllowedError):
            emf.count("TransitionRefused")  # every action's 409 comes through here
        headers = {"Retry-After": str(error.retry_after_s)} if error.retry_after_s is not None else {}
        return error.status, error_body(error.code, error.message, error.details), headers
    if isinstance(error, ValidationError):  # a model validated outside ``web.requests``: still a 400
        from chalicelib.web.requests import invalid_input

        return translate(invalid_input(error, "body"))
    if _is_database_down(error):
        log.warning("database unavailable: %s", type(error).__name__)
        body = error_body("service_unavailable", "the database is unavailable; nothing was changed, try again")
        return 503, body, {"Retry-After": RETRY_AFTER_S}
    log.exception("unhandled error")
    return 500, error_body("internal_error", "an internal error occurred"), {}


def _is_database_down(error: Exception) -> bool:
    import psycopg

    return isinstance(error, psycopg.OperationalError)
