"""Domain errors, and the one table of error codes the API answers with.

``ERROR_CODES`` is the whole vocabulary of ``{"error": {"code", "message", "details"}}``:
every code snake_case, with its HTTP status and what it means.  docs/api.md's table and
the OpenAPI document are generated from it, API Gateway's own answers (the merge
template's gateway responses) are checked against it, and a test produces every code
at least once.  Each ``AppError`` subclass names one of its codes (checked when the
class is made).  ``chalicelib.web.responses`` turns the errors into responses.

Details have one shape per kind of error: bad input lists ``problems``, items
``{"field": "<body|query|path|header>.<name>", "problem": "..."}``; a refused workflow
action names ``current_status`` and ``allowed_actions``; the rest carry ``{}`` or a
few named numbers (``attempts_left``).
"""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorCode:
    """One code: its HTTP status, what it means to a client, and which of API Gateway's own
    responses answer with it (``gateway_responses``: GatewayResponse types; the service itself
    answers ``by_service`` codes)."""

    code: str
    status: int
    meaning: str
    by_service: bool = True
    gateway_responses: tuple[str, ...] = ()


ERROR_CODES: tuple[ErrorCode, ...] = (
    ErrorCode(
        "invalid_input",
        400,
        "The body, a query parameter, a path parameter or a header is not valid; `details.problems` "
        "lists each as `{field, problem}`, the field prefixed by where it came from (`body.phone`, `query.limit`)",
    ),
    ErrorCode("invalid_code", 400, "The one-time code is wrong or expired, or none is outstanding"),
    ErrorCode(
        "unauthorized",
        401,
        "No Bearer token, or one that is not valid (malformed, expired, not signed by the expected key)",
        gateway_responses=("UNAUTHORIZED",),
    ),
    ErrorCode(
        "forbidden", 403, "The token's roles do not allow this", gateway_responses=("ACCESS_DENIED", "WAF_FILTERED")
    ),
    ErrorCode(
        "not_found",
        404,
        "No such registration, path or file",
        gateway_responses=("MISSING_AUTHENTICATION_TOKEN", "RESOURCE_NOT_FOUND"),
    ),
    ErrorCode(
        "method_not_allowed",
        405,
        "The path exists, but not with this method; `details.allowed_methods` lists those it takes "
        "(API Gateway answers such a request itself, as an unknown path: 404 `not_found`)",
    ),
    ErrorCode(
        "duplicate_registration",
        409,
        "These details cannot be used for a new registration now; on purpose it names no status and "
        "no field (the registrant learns more on their own phone)",
    ),
    ErrorCode("duplicate_package", 409, "A package with this name exists (in any letter case)"),
    ErrorCode(
        "transition_not_allowed",
        409,
        "The action is not allowed from the registration's current status; `details` names "
        "`current_status` and `allowed_actions`",
    ),
    ErrorCode(
        "not_awaiting_code",
        409,
        "The registration is not waiting for a one-time code (it is verified, or closed)",
    ),
    ErrorCode(
        "customer_data_kept",
        409,
        "The registration became a customer: the contract and the law require keeping its data, so it is not erased",
    ),
    ErrorCode("payload_too_large", 413, "The body is larger than 16 KiB", gateway_responses=("REQUEST_TOO_LARGE",)),
    ErrorCode(
        "unsupported_media_type",
        415,
        "A body that is not `Content-Type: application/json`",
        gateway_responses=("UNSUPPORTED_MEDIA_TYPE",),
    ),
    ErrorCode("idempotency_key_reused", 422, "An `Idempotency-Key` used before with another body"),
    ErrorCode(
        "too_many_requests",
        429,
        "Too many tries or requests; `Retry-After` says when to try again",
        gateway_responses=("THROTTLED", "QUOTA_EXCEEDED"),
    ),
    ErrorCode("internal_error", 500, "A fault of the service; it is logged, the message says nothing inside"),
    ErrorCode(
        "service_unavailable",
        503,
        "A dependency (the database, SQS, the token keys) is down; nothing was changed, try again after `Retry-After`",
    ),
    ErrorCode(
        "request_rejected",
        400,
        "API Gateway refused the request before it reached the service (its own 4xx status)",
        by_service=False,
        gateway_responses=("DEFAULT_4XX",),
    ),
    ErrorCode(
        "gateway_error",
        502,
        "API Gateway could not get an answer from the service (its own 5xx status; 504 after 29 s)",
        by_service=False,
        gateway_responses=("DEFAULT_5XX",),
    ),
)

ERROR_CODE_BY_NAME: dict[str, ErrorCode] = {e.code: e for e in ERROR_CODES}


def markdown_table() -> str:
    """docs/api.md's table of codes (``make readme-diagram`` writes it; a test compares)."""
    lines = ["| status | code | meaning | also from API Gateway |", "|---|---|---|---|"]
    for error in sorted(ERROR_CODES, key=lambda e: (e.status, not e.by_service, e.code)):
        gateway = ", ".join(f"`{r}`" for r in error.gateway_responses)
        lines.append(f"| {error.status} | `{error.code}` | {error.meaning} | {gateway} |")
    return "\n".join(lines) + "\n"


class AppError(Exception):
    """An error the caller can act on; ``status`` and ``code`` say which (a row of ``ERROR_CODES``)."""

    status = 500
    code = "internal_error"
    # Seconds the caller should wait before trying again (the Retry-After header).
    retry_after_s: int | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        known = ERROR_CODE_BY_NAME.get(cls.code)
        if known is None or known.status != cls.status or not known.by_service:
            raise TypeError(f"{cls.__name__}: ({cls.status}, {cls.code!r}) is not a service code of ERROR_CODES")

    def __init__(self, message: str, details: dict[str, Any] | None = None, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if retry_after_s is not None:
            self.retry_after_s = retry_after_s


class BadRequestError(AppError):
    status, code = 400, "invalid_input"


class UnauthorizedError(AppError):
    status, code = 401, "unauthorized"


class ForbiddenError(AppError):
    status, code = 403, "forbidden"


class NotFoundError(AppError):
    status, code = 404, "not_found"


class ConflictError(AppError):
    status, code = 409, "transition_not_allowed"


class DuplicateRegistrationError(ConflictError):
    code = "duplicate_registration"


class DuplicatePackageError(ConflictError):
    code = "duplicate_package"


class TransitionNotAllowedError(ConflictError):
    code = "transition_not_allowed"


class NotAwaitingCodeError(ConflictError):
    code = "not_awaiting_code"


class CustomerDataKeptError(ConflictError):
    code = "customer_data_kept"


class InvalidCodeError(AppError):
    status, code = 400, "invalid_code"


class IdempotencyKeyReusedError(AppError):
    status, code = 422, "idempotency_key_reused"


class TooManyRequestsError(AppError):
    status, code = 429, "too_many_requests"


class PayloadTooLargeError(AppError):
    status, code = 413, "payload_too_large"


class ServiceUnavailableError(AppError):
    status, code = 503, "service_unavailable"
    retry_after_s = 5


def problem(source: str, field: str, text: str) -> dict[str, str]:
    """One item of ``details.problems``: ``source`` is body, query, path or header."""
    return {"field": f"{source}.{field}" if field else source, "problem": text}
