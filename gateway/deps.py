"""Dependencies shared by the routes: the ready service and who is calling."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.errors import ApiError, not_ready
from gateway.runtime import Runtime

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
    username = await runtime.authenticate(token)
    if username is None:
        if _is_admin(runtime, token):
            raise ApiError(403, "FORBIDDEN", "The admin token is not a user's API key")
        raise _unauthorized("The token is not valid")
    return username


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
CurrentUser = Annotated[str, Depends(_current_user)]
Admin = Annotated[None, Depends(_admin)]
