"""Direct paths: a hot endpoint served past FastAPI's dependency solving when it plainly can be.

FastAPI's dependency solving was a third of the gateway's time per order. A direct path
serves a request only when every check the declared route makes would pass (it reads the
body, the headers and the caches itself, and calls the endpoint), and answers None
otherwise; the request, its body already read, then takes FastAPI's own path, which
answers the documented error. `ExactJSONRoute` (gateway/exact_json.py) tries it first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response

# endpoint -> its direct path: `async (request) -> Response | None`
_DIRECT: dict[Callable, Callable[[Request], Awaitable[Response | None]]] = {}


def direct_path(endpoint: Callable):
    """Register the decorated function as the direct path of `endpoint`."""

    def register(direct):
        _DIRECT[endpoint] = direct
        return direct

    return register


def direct_path_of(endpoint: Callable) -> Callable[[Request], Awaitable[Response | None]] | None:
    return _DIRECT.get(endpoint)


def is_json(request: Request) -> bool:
    """The content types FastAPI parses as JSON, in their plain spelling (others go the long way)."""
    content_type = request.headers.get("content-type")
    return content_type == "application/json" or content_type == "application/json; charset=utf-8"
