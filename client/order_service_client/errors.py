"""Typed errors: every refusal of the API is an `ApiError` carrying its `code`; a few codes
that callers handle on their own have their own class."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer of the API: HTTP status, machine code (API.md), message, details, data."""

    def __init__(self, status: int, code: str, message: str, details: Any = None, data: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.data = data


class Unauthorized(ApiError):
    """401: missing or wrong token."""


class Forbidden(ApiError):
    """403: this token may not use this route."""


class NotFound(ApiError):
    """404: ORDER_NOT_FOUND, ASSET_NOT_FOUND, USER_NOT_FOUND."""


class Conflict(ApiError):
    """409: USER_EXISTS, ASSET_EXISTS, ORDER_NOT_OPEN, DUPLICATE_CLIENT_ORDER_ID."""


class InvalidRequest(ApiError):
    """422: VALIDATION_ERROR, INVALID_ORDER, INSUFFICIENT_BALANCE, INVALID_TICK_SIZE..."""


class Unavailable(ApiError):
    """503: NOT_READY (recovering) or SERVICE_UNAVAILABLE (outcome unknown); raised once retries ran out."""


_BY_STATUS = {401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 422: InvalidRequest,
              503: Unavailable}


def error_from_answer(status: int, body: Any) -> ApiError:
    """Build the typed error of an error answer (the envelope, or anything else a proxy sent)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return _BY_STATUS.get(status, ApiError)(status, f"HTTP_{status}", str(body)[:200])
    return _BY_STATUS.get(status, ApiError)(status, str(error.get("code")), str(body.get("message", "")),
                                            error.get("details"), body.get("data"))
