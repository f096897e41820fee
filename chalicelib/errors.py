"""Domain errors.  ``chalicelib.http`` turns them into the pinned JSON error body."""

from typing import Any


class AppError(Exception):
    """An error the caller can act on; ``status`` and ``code`` say which."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


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


class PayloadTooLargeError(AppError):
    status, code = 413, "payload_too_large"


class ServiceUnavailableError(AppError):
    status, code = 503, "service_unavailable"
