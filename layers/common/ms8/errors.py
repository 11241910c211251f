"""Errors the service reports to clients: an HTTP status, a stable code and a plain message."""

from __future__ import annotations


class AppError(Exception):
    """An error with a client-facing status, code and message (never a stack trace)."""

    status = 400
    code = "BAD_REQUEST"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status


class BadRequest(AppError):
    status, code = 400, "BAD_REQUEST"


class Unauthorized(AppError):
    status, code = 401, "UNAUTHORIZED"


class Forbidden(AppError):
    status, code = 403, "FORBIDDEN"


class NotFound(AppError):
    status, code = 404, "NOT_FOUND"


class Conflict(AppError):
    status, code = 409, "CONFLICT"


class PayloadTooLarge(AppError):
    status, code = 413, "PAYLOAD_TOO_LARGE"


class Unprocessable(AppError):
    status, code = 422, "VALIDATION_ERROR"


class Unavailable(AppError):
    status, code = 503, "SERVICE_UNAVAILABLE"


class DatabaseUnavailable(Unavailable):
    code = "DATABASE_UNAVAILABLE"
