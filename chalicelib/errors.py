"""Domain errors.  ``chalicelib.web.responses`` turns them into the pinned JSON error body."""

from typing import Any


class AppError(Exception):
    """An error the caller can act on; ``status`` and ``code`` say which."""

    status = 500
    code = "internal_error"
    # Seconds the caller should wait before trying again (the Retry-After header).
    retry_after_s: int | None = None

    def __init__(self, message: str, details: dict[str, Any] | None = None, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if retry_after_s is not None:
            self.retry_after_s = retry_after_s


class BadRequestError(AppError):
    status, code = 400, "bad_request"


class UnauthorizedError(AppError):
    status, code = 401, "unauthorized"


class ForbiddenError(AppError):
    status, code = 403, "forbidden"


class NotFoundError(AppError):
    status, code = 404, "not_found"


class ConflictError(AppError):
    status, code = 409, "conflict"


class DuplicateRegistrationError(ConflictError):
    code = "duplicate_registration"


class TransitionNotAllowedError(ConflictError):
    code = "transition_not_allowed"


class InvalidCodeError(BadRequestError):
    code = "invalid_code"


class IdempotencyKeyReusedError(AppError):
    status, code = 422, "idempotency_key_reused"


class TooManyRequestsError(AppError):
    status, code = 429, "too_many_requests"


class PayloadTooLargeError(AppError):
    status, code = 413, "payload_too_large"


class ServiceUnavailableError(AppError):
    status, code = 503, "service_unavailable"
    retry_after_s = 5
