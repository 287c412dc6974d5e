"""Dependencies shared by the routes: the ready service and who is calling."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.errors import ApiError, not_ready, rate_limited
from gateway.runtime import Runtime, hash_key

_bearer = HTTPBearer(auto_error=False, description="An API key, or the admin token on admin routes")


# Each dependency is a node FastAPI resolves on every request: they are kept flat (the
# runtime is read from the request, not from a dependency of its own).

def _ready(request: Request) -> Runtime:
    runtime = request.app.state.runtime
    if not runtime.ready:
        raise not_ready()
    return runtime


async def _ready_runtime(request: Request) -> Runtime:
    return _ready(request)


def known_user(runtime: Runtime, request: Request) -> str | None:
    """The user of a ready service whose API key the request bears and this gateway has seen
    (a direct path's check: None for anything else, which the dependencies then judge)."""
    if not runtime.ready:
        return None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return None
    return runtime.cached_user(token)


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "UNAUTHORIZED", message, headers={"WWW-Authenticate": "Bearer"})


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials:
        raise _unauthorized("A bearer token is required")
    return credentials.credentials


def _is_admin(runtime: Runtime, token: str) -> bool:
    return hmac.compare_digest(token.encode(), runtime.admin_token.encode())


async def _current_user(request: Request,
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    runtime = _ready(request)
    token = _token(credentials)
    owner = await runtime.authenticate(token)
    if owner is None:
        if _is_admin(runtime, token):
            raise ApiError(403, "FORBIDDEN", "The admin token is not a user's API key")
        raise _unauthorized("The token is not valid")
    if owner.suspended:
        raise ApiError.rejected("USER_SUSPENDED")
    return owner.username


async def _take_read_token(runtime: Runtime, request: Request, username: str) -> None:
    """With the read limit on, take a token of the user's read bucket (at the user's shard, over
    every key and process), or refuse the request (429)."""
    rate = runtime.settings.read_rate
    if rate > 0:
        left = await runtime.client.admit_read(username)
        if left is None:
            raise rate_limited(rate)
        request.state.rate_limit_remaining = left  # gateway/app.py's RateLimitHeader answers it


async def _reading_user(request: Request, username: Annotated[str, Depends(_current_user)]) -> str:
    """The caller of a user route other than orders' changes (the read limit applies)."""
    await _take_read_token(request.app.state.runtime, request, username)
    return username


async def _key_hash(request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """The hash of the caller's live user key (the admin token is no user key: 401)."""
    runtime = _ready(request)
    token = _token(credentials)
    owner = await runtime.authenticate(token)
    if owner is None:
        raise _unauthorized("The token is not a valid API key")
    if owner.suspended:
        raise ApiError.rejected("USER_SUSPENDED")
    await _take_read_token(runtime, request, owner.username)
    return hash_key(token)


async def _admin(request: Request,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    runtime = _ready(request)
    token = _token(credentials)
    if _is_admin(runtime, token):
        return
    if await runtime.authenticate(token) is not None:
        raise ApiError(403, "FORBIDDEN", "Admin routes need the admin token")
    raise _unauthorized("The token is not valid")


Service = Annotated[Runtime, Depends(_ready_runtime)]
CurrentUser = Annotated[str, Depends(_current_user)]  # routes that place, amend or cancel orders
ReadingUser = Annotated[str, Depends(_reading_user)]  # every other user route (the read limit)
CallerKeyHash = Annotated[str, Depends(_key_hash)]
Admin = Annotated[None, Depends(_admin)]
