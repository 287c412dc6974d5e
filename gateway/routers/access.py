"""Access: an admin's keys, suspensions and audit log; a user's own key rotation.

Every change is journaled by the registry (with its audit entry in the same append) before
it is answered; revocations and suspensions reach every gateway process within a second
(gateway/access.py).
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from gateway.deps import Admin, CallerKeyHash, Service
from gateway.errors import ApiError, within_deadline
from gateway.exact_json import ExactJSONRoute
from gateway.models.access import AuditAction, AuditLogData, KeyCreatedData, RotatedKeyData, UserData
from gateway.models.common import Envelope
from gateway.models.errors import ADMIN_AUTH, USER_AUTH, error_responses
from gateway.responses import iso_from_micros, ok
from gateway.runtime import hash_key

admin = APIRouter(prefix="/api/v1/admin", tags=["admin"], route_class=ExactJSONRoute)
keys = APIRouter(prefix="/api/v1/keys", tags=["keys"], route_class=ExactJSONRoute)

_USERNAME = re.compile(r"[a-z0-9_.-]{3,32}")
_USER = (ADMIN_AUTH, "VALIDATION_ERROR", "USER_NOT_FOUND")


def _username(username: Annotated[str, Path(description="3-32 of [a-z0-9_.-]")]) -> str:
    """A name no user can have is simply not found (as an order id that is not a number)."""
    if _USERNAME.fullmatch(username) is None:
        raise _user_not_found(username[:40])
    return username


Username = Annotated[str, Depends(_username)]
KeyId = Annotated[str, Path(description="a key's public id")]


def _now() -> int:
    return time.time_ns() // 1000


def _user_data(user: dict) -> dict:
    def moment(micros: int | None) -> str | None:
        return None if micros is None else iso_from_micros(micros)

    return {"username": user["username"], "status": user["status"], "created_at": moment(user["created_at"]),
            "keys": [{"key_id": key["key_id"], "created_at": moment(key["created_at"]),
                      "last_used_at": moment(key["last_used_at"]), "revoked_at": moment(key["revoked_at"])}
                     for key in user["keys"]]}


def _user_not_found(username: str) -> ApiError:
    return ApiError.rejected("UNKNOWN_USER", details=username)


@admin.post("/users/{username}/keys", status_code=201, response_model=Envelope[KeyCreatedData],
            responses=error_responses(*_USER, "TOO_MANY_KEYS"))
async def create_key(username: Username, _: Admin, service: Service):
    """Give a user another API key (up to 10 live ones); the key is shown only in this answer."""
    api_key = secrets.token_urlsafe(32)
    refused, key_id = await within_deadline(service.client.create_key(username, hash_key(api_key), _now()))
    if refused:
        raise ApiError.rejected(refused, details=username)
    return ok({"username": username, "key_id": key_id, "api_key": api_key}, "Key created", 201)


@admin.delete("/users/{username}/keys/{key_id}", response_model=Envelope[UserData],
              responses=error_responses(*_USER, "KEY_NOT_FOUND"))
async def revoke_key(username: Username, key_id: KeyId, _: Admin, service: Service):
    """Revoke one of a user's keys: refused everywhere within 1 s (again: answers 200 again)."""
    if len(key_id) > 16:
        raise ApiError.rejected("KEY_NOT_FOUND", details=key_id[:40])
    refused = await within_deadline(service.client.revoke_key(username, key_id, _now()))
    if refused:
        raise ApiError.rejected(refused, details=username if refused == "UNKNOWN_USER" else key_id)
    user = await service.client.user(username)
    return ok(_user_data(user), "Key revoked")


@admin.get("/users/{username}", response_model=Envelope[UserData], responses=error_responses(*_USER))
async def get_user(username: Username, _: Admin, service: Service):
    """A user's status and keys (ids and times; never a key or its hash)."""
    user = await service.client.user(username)
    if user is None:
        raise _user_not_found(username)
    return ok(_user_data(user))


@admin.post("/users/{username}/suspend", response_model=Envelope[UserData], responses=error_responses(*_USER))
async def suspend_user(username: Username, _: Admin, service: Service):
    """Suspend a user: its keys are refused (403) and its open orders cancelled, their holds released."""
    return await _set_suspended(service, username, True)


@admin.post("/users/{username}/resume", response_model=Envelope[UserData], responses=error_responses(*_USER))
async def resume_user(username: Username, _: Admin, service: Service):
    """Resume a suspended user."""
    return await _set_suspended(service, username, False)


async def _set_suspended(service, username: str, suspended: bool):
    refused, user = await within_deadline(service.client.set_suspended(username, suspended, _now()))
    if refused:
        raise _user_not_found(username)
    return ok(_user_data(user), "User suspended" if suspended else "User resumed")


@admin.get("/audit-log", response_model=Envelope[AuditLogData], responses=error_responses(ADMIN_AUTH,
                                                                                          "VALIDATION_ERROR"))
async def audit_log(
    _: Admin, service: Service,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    action: AuditAction | None = None,
    username: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
):
    """Every admin action and key rotation, newest first; `username` matches the actor, the
    target, or the user whose key it was."""
    entries, total = await service.client.audit_page(action.value if action else None, username, limit, offset)
    for entry in entries:
        entry["timestamp"] = iso_from_micros(entry["timestamp"])
    return ok({"entries": entries, "total_count": total, "has_more": offset + len(entries) < total})


@keys.post("/rotate", status_code=201, response_model=Envelope[RotatedKeyData], responses=error_responses(USER_AUTH))
async def rotate_key(key_hash: CallerKeyHash, service: Service):
    """Replace the calling key by a new one (shown only in this answer); the calling key is revoked."""
    api_key = secrets.token_urlsafe(32)
    refused, _, key_id = await within_deadline(service.client.rotate_key(key_hash, hash_key(api_key), _now()))
    if refused == "USER_SUSPENDED":
        raise ApiError.rejected(refused)
    if refused:  # revoked meanwhile
        raise ApiError(401, "UNAUTHORIZED", "The token is not valid", headers={"WWW-Authenticate": "Bearer"})
    return ok({"key_id": key_id, "api_key": api_key}, "Key rotated", 201)
