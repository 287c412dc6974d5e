"""The FastAPI application: routers, the error envelope, a body size limit.

Bodies over 1 MiB are refused before they are read whole.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi import HTTPException as StarletteHTTPException

from gateway.errors import ApiError, error_response, install_error_handlers
from gateway.metrics import HttpMetrics
from gateway.models.common import ErrorEnvelope
from gateway.routers import access, accounts, admin, assets, health, metrics, orders, streams
from gateway.runtime import Runtime
from gateway.stream_hub import StreamHub

MAX_BODY_BYTES = 1 << 20


class BodySizeLimit:
    """Refuse bodies over `max_bytes` (413), declared or streamed, without buffering them.

    A plain ASGI middleware: Starlette's BaseHTTPMiddleware would cost a task
    group and memory streams on every request.
    """

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    return await error_response(_too_large())(scope, receive, send)
                break
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI hands its own HTTPException, raised while reading the body, to the handler.
                    raise StarletteHTTPException(413, "The body is larger than 1 MiB")
            return message

        await self.app(scope, limited_receive, send)


class RateLimitHeader:
    """Add `X-RateLimit-Remaining` to answers of routes that took a read token (gateway/deps.py
    leaves the count in the request's state); order routes add theirs themselves."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_header(message):
            if message["type"] == "http.response.start":
                remaining = scope.get("state", {}).get("rate_limit_remaining")
                headers = message.get("headers") or []
                if remaining is not None and not any(name == b"x-ratelimit-remaining" for name, _ in headers):
                    message = {**message, "headers": [*headers, (b"x-ratelimit-remaining", str(remaining).encode())]}
            await send(message)

        await self.app(scope, receive, send_with_header)


def _too_large() -> ApiError:
    return ApiError(413, "PAYLOAD_TOO_LARGE", "The body is larger than 1 MiB")


def _with_error_envelope(app: FastAPI) -> None:
    """Add `ErrorEnvelope` to the document's components: the routes' error answers refer to it
    (gateway/models/errors.py) without naming it as a FastAPI response model."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            envelope = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(envelope.pop("$defs", {}))
            components["ErrorEnvelope"] = envelope
        return app.openapi_schema

    app.openapi = openapi


STATIC = Path(__file__).parent / "static"


def _with_live_page(app: FastAPI) -> None:
    """The live page of API.md at `/`: static files, no build step, nothing fetched from elsewhere."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def live_page():
        return FileResponse(STATIC / "index.html")


def create_app(runtime: Runtime) -> FastAPI:
    """Build the app around a runtime that `lifespan` starts and closes."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await runtime.start()
        runtime.metrics.start_flushing()
        yield
        await app.state.streams.close()
        runtime.metrics.stop_flushing()
        await runtime.close()

    app = FastAPI(
        title="Order Service",
        version="0.1.0",
        description="Order matching with held funds, price-time priority books and a durable journal. "
                    "See API.md for the contract.",
        lifespan=lifespan,
        # No OpenTelemetry here: checking for configured providers on every request cost time.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    app.state.streams = StreamHub(runtime)
    runtime.access_listeners.append(app.state.streams)  # revoked keys and suspensions close sockets
    for module in (orders, accounts, assets, admin):  # the busiest first: routes are matched in order
        app.include_router(module.router)
    app.include_router(access.admin)
    app.include_router(access.keys)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(streams.router)
    _with_live_page(app)
    install_error_handlers(app)
    _with_error_envelope(app)

    if runtime.settings.read_rate > 0:  # only then: the read routes' X-RateLimit-Remaining
        app.add_middleware(RateLimitHeader)
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    if runtime.metrics.enabled:  # outermost: it counts the body limit's refusals too (route "unmatched")
        app.add_middleware(HttpMetrics, metrics=runtime.metrics)
    return app
