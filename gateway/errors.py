"""Every error answer, in the envelope of API.md, mapped in one place.

`RejectReason` values from the engine and actors become an HTTP status and
an error code here and nowhere else. FastAPI's validation errors and
Starlette's HTTP errors are rewritten into the same envelope; anything
unexpected is a 500 that carries no traceback.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import ray
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from engine import Rejected
from gateway.responses import envelope_response

log = logging.getLogger(__name__)

# RejectReason value -> (HTTP status, error code, message)
REJECTIONS: dict[str, tuple[int, str, str]] = {
    "INSUFFICIENT_BALANCE": (422, "INSUFFICIENT_BALANCE", "Insufficient balance"),
    "UNKNOWN_ASSET": (422, "UNKNOWN_ASSET", "Unknown asset"),
    "INVALID_TICK_SIZE": (422, "INVALID_TICK_SIZE", "Price is not a multiple of the asset's tick size"),
    "INVALID_LOT_SIZE": (422, "INVALID_LOT_SIZE", "Quantity is not a multiple of the asset's lot size"),
    "INVALID_PRICE": (422, "INVALID_PRICE", "Invalid price"),
    "INVALID_QUANTITY": (422, "INVALID_QUANTITY", "Invalid quantity"),
    "INVALID_AMOUNT": (422, "INVALID_AMOUNT", "Invalid amount"),
    "INVALID_ASSET_SPEC": (422, "INVALID_ASSET_SPEC", "tick_size × lot_size must be a multiple of 0.00000001 USD"),
    "INVALID_ORDER": (422, "INVALID_ORDER", "Invalid order"),
    "INVALID_AMEND": (422, "INVALID_AMEND", "This amend changes nothing, or is not allowed for this order"),
    "STOP_WOULD_TRIGGER": (422, "STOP_WOULD_TRIGGER", "The stop's trigger already holds at the last trade price"),
    "POST_ONLY_WOULD_MATCH": (422, "POST_ONLY_WOULD_MATCH", "A post-only order moved there would trade"),
    "USER_EXISTS": (409, "USER_EXISTS", "User already exists"),
    "ASSET_EXISTS": (409, "ASSET_EXISTS", "Asset already exists"),
    "UNKNOWN_USER": (404, "USER_NOT_FOUND", "User not found"),
    "DUPLICATE_CLIENT_ORDER_ID": (409, "DUPLICATE_CLIENT_ORDER_ID", "client_order_id was used before"),
    "ORDER_NOT_FOUND": (404, "ORDER_NOT_FOUND", "Order not found"),
    "ORDER_NOT_OPEN": (409, "ORDER_NOT_OPEN", "Order is not open"),
    "USER_SUSPENDED": (403, "USER_SUSPENDED", "The user is suspended"),
    "RATE_LIMITED": (429, "RATE_LIMITED", "Too many requests: the user's rate limit is reached"),
    "TOO_MANY_KEYS": (409, "TOO_MANY_KEYS", "The user has 10 live keys already"),
    "KEY_NOT_FOUND": (404, "KEY_NOT_FOUND", "Key not found"),
}
# Headers that go with a rejection (the order rate's Retry-After: see `configure_rate_limits`).
_REJECTION_HEADERS: dict[str, dict[str, str]] = {"RATE_LIMITED": {"Retry-After": "1", "X-RateLimit-Remaining": "0"}}

# Codes the gateway answers itself, beside the rejections above.
_GATEWAY_CODES = {"UNAUTHORIZED": 401, "FORBIDDEN": 403, "ASSET_NOT_FOUND": 404, "PAYLOAD_TOO_LARGE": 413,
                  "VALIDATION_ERROR": 422, "INVALID_ASSET": 422, "NOT_READY": 503, "SERVICE_UNAVAILABLE": 503}
# Every documented error code -> its HTTP status (the OpenAPI document lists them per route).
CODE_STATUSES: dict[str, int] = {code: status for status, code, _ in REJECTIONS.values()} | _GATEWAY_CODES

_HTTP_CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
               405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
               503: "NOT_READY"}


class ApiError(Exception):
    """An answer other than success: status, machine code, message, details, and maybe data."""

    def __init__(self, status: int, code: str, message: str, details: Any = None, data: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.data = data
        self.headers = headers

    @classmethod
    def rejected(cls, reason: str, details: Any = None, data: Any = None) -> ApiError:
        """Map a RejectReason value to its answer."""
        status, code, message = REJECTIONS.get(reason, (422, reason, reason.replace("_", " ").capitalize()))
        return cls(status, code, message, details, data, _REJECTION_HEADERS.get(reason))


def retry_after_seconds(rate: float) -> int:
    """Whole seconds (at least 1) in which an empty bucket of `rate` a second holds a token again."""
    return max(1, math.ceil(1 / rate)) if rate > 0 else 1


def configure_rate_limits(order_rate: float) -> None:
    """Set the Retry-After of the order limit's refusals (the rate is the same for every process)."""
    _REJECTION_HEADERS["RATE_LIMITED"] = {"Retry-After": str(retry_after_seconds(order_rate)),
                                          "X-RateLimit-Remaining": "0"}


def rate_limited(rate: float) -> ApiError:
    """A request past its user's limit of `rate` a second: 429, nothing done."""
    status, code, message = REJECTIONS["RATE_LIMITED"]
    return ApiError(status, code, message,
                    headers={"Retry-After": str(retry_after_seconds(rate)), "X-RateLimit-Remaining": "0"})



def not_ready() -> ApiError:
    return ApiError(503, "NOT_READY", "The service is recovering; try again shortly",
                    headers={"Retry-After": "1"})


def unavailable() -> ApiError:
    return ApiError(503, "SERVICE_UNAVAILABLE",
                    "A part of the service restarted while handling this request; the outcome is "
                    "unknown: retry with the same client_order_id", headers={"Retry-After": "1"})


REQUEST_TIMEOUT_SECONDS = 30.0


async def within_deadline(call):
    """Await an actor call that changes state; a restart under it is a retryable 503."""
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):  # unlike wait_for, no task per request
            return await call
    except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError, asyncio.TimeoutError):
        raise unavailable() from None


def error_response(error: ApiError):
    return envelope_response(
        error.status, False, error.message, error.data,
        error={"code": error.code, "details": error.details}, headers=error.headers)


def allowed_methods(request: Request) -> str:
    """The methods of the resource this path names: every route of the first matching route's
    template (Starlette's 405 names only that one route's methods; `/orders/batch` is its own
    resource, although `/orders/{order_id}` would also match it)."""
    template = None
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):  # included routers flattened
        if template is None:
            match, _ = route.matches(request.scope)
            if match is Match.NONE:
                continue
            template = route.path
        if route.path == template:
            methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error in the envelope."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError):
        return error_response(error)

    @app.exception_handler(Rejected)
    async def rejected(_: Request, error: Rejected):
        return error_response(ApiError.rejected(error.reason.value, details=error.message))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError):
        details = [{"loc": list(item.get("loc", ())), "msg": item.get("msg", ""), "type": item.get("type", "")}
                   for item in error.errors()]
        return error_response(ApiError(422, "VALIDATION_ERROR", "The request is not valid", details))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        code = _HTTP_CODES.get(error.status_code, f"HTTP_{error.status_code}")
        message = error.detail if isinstance(error.detail, str) else code.replace("_", " ").capitalize()
        headers = error.headers
        if error.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return error_response(ApiError(error.status_code, code, message, headers=headers))

    @app.exception_handler(ray.exceptions.RayActorError)
    @app.exception_handler(ray.exceptions.ActorUnavailableError)
    async def actor_restarting(_: Request, error: Exception):
        return error_response(unavailable())

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
        return error_response(ApiError(500, "INTERNAL_ERROR", "Internal server error"))
