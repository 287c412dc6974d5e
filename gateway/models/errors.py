"""The error answers each route documents: status, the envelope, and the exact `error.code` values.

A route lists the codes it can answer (`error_responses(...)`); each status then documents an
`ErrorEnvelope` whose `error.code` is one of those codes, so a client generated from the
document knows every error it must handle, and the fuzz tests check that the service answers
no other. Statuses come from `gateway.errors`, the one place that maps codes to them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from gateway.errors import CODE_STATUSES

_REF = "#/components/schemas/{}"
_DESCRIPTIONS = {
    401: "Missing or wrong bearer token",
    403: "The token may not use this route",
    404: "Not found",
    409: "Conflict with the current state",
    413: "The body is larger than 1 MiB",
    422: "Invalid request, or refused by the rules",
    429: "The user's rate limit is reached: nothing was done; retry after Retry-After seconds",
    503: "The service is recovering, or a part of it restarted: retry (with the same client_order_id)",
}
_HEADERS = {
    401: {"WWW-Authenticate": {"required": True, "description": "Bearer", "schema": {"type": "string"}}},
    429: {"Retry-After": {"required": True, "description": "seconds", "schema": {"type": "string"}},
          "X-RateLimit-Remaining": {"required": True, "description": "0", "schema": {"type": "string"}}},
    503: {"Retry-After": {"required": True, "description": "seconds", "schema": {"type": "string"}}},
}
# What `data` carries with these codes (else null): the order, so a retry learns the outcome.
_DATA = {"DUPLICATE_CLIENT_ORDER_ID": "OrderData", "ORDER_NOT_OPEN": "OrderData"}

ADMIN_AUTH = ("UNAUTHORIZED", "FORBIDDEN", "NOT_READY", "SERVICE_UNAVAILABLE")
# A user route also answers a suspended user (403) and a user past a rate limit (429).
USER_AUTH = (*ADMIN_AUTH, "USER_SUSPENDED", "RATE_LIMITED")
PUBLIC = ("NOT_READY", "SERVICE_UNAVAILABLE")
BODY = ("VALIDATION_ERROR", "PAYLOAD_TOO_LARGE")
ORDER_REFUSALS = ("INVALID_ORDER", "INVALID_QUANTITY", "INVALID_PRICE", "INVALID_TICK_SIZE",
                  "INVALID_LOT_SIZE", "UNKNOWN_ASSET", "INSUFFICIENT_BALANCE", "STOP_WOULD_TRIGGER")
AMEND_REFUSALS = ("INVALID_AMEND", "INVALID_TICK_SIZE", "INVALID_LOT_SIZE", "INVALID_PRICE",
                  "INSUFFICIENT_BALANCE", "POST_ONLY_WOULD_MATCH")


def error_schema(codes: list[str]) -> dict[str, Any]:
    """The envelope of an error whose `error.code` is one of `codes`."""
    data_models = sorted({_DATA[code] for code in codes if code in _DATA})
    refine: dict[str, Any] = {"type": "object", "properties": {
        "error": {"type": "object", "properties": {"code": {"type": "string", "enum": sorted(codes)}}}}}
    if data_models:
        refine["properties"]["data"] = {"anyOf": [*({"$ref": _REF.format(name)} for name in data_models),
                                                  {"type": "null"}]}
    return {"allOf": [{"$ref": _REF.format("ErrorEnvelope")}, refine]}


def error_responses(*code_groups: tuple[str, ...] | str) -> dict[int | str, dict[str, Any]]:
    """FastAPI `responses` for the given error codes, grouped by their HTTP status."""
    by_status: dict[int, list[str]] = defaultdict(list)
    for group in code_groups:
        for code in (group,) if isinstance(group, str) else group:
            if code not in by_status[CODE_STATUSES[code]]:
                by_status[CODE_STATUSES[code]].append(code)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, codes in sorted(by_status.items()):
        response: dict[str, Any] = {
            "description": f"{_DESCRIPTIONS[status]}: {', '.join(codes)}",
            "content": {"application/json": {"schema": error_schema(codes)}},
        }
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        responses[status] = response
    return responses
