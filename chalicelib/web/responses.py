"""The one place errors become HTTP responses: ``{"error": {"code", "message", "details"}}``."""

import logging
from typing import Any

from chalicelib.errors import AppError, TransitionNotAllowedError
from chalicelib.platform import emf

log = logging.getLogger(__name__)

RETRY_AFTER_S = "5"


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
    if isinstance(error, ValidationError):
        problems = [
            {"field": ".".join(str(part) for part in item["loc"]), "problem": item["msg"]}
            for item in error.errors(include_url=False, include_input=False)
        ]
        return 400, error_body("invalid_input", "the request body is not valid", {"problems": problems}), {}
    if _is_database_down(error):
        log.warning("database unavailable: %s", type(error).__name__)
        body = error_body("service_unavailable", "the database is unavailable; nothing was changed, try again")
        return 503, body, {"Retry-After": RETRY_AFTER_S}
    log.exception("unhandled error")
    return 500, error_body("internal_error", "an internal error occurred"), {}


def _is_database_down(error: Exception) -> bool:
    import psycopg

    return isinstance(error, psycopg.OperationalError)
