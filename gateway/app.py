"""The FastAPI application: routers, the error envelope, a body size limit.

Bodies over 1 MiB are refused before they are read whole.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from gateway.errors import ApiError, error_response, install_error_handlers
from gateway.routers import accounts, admin, assets, health, orders
from gateway.runtime import Runtime

MAX_BODY_BYTES = 1 << 20


def create_app(runtime: Runtime) -> FastAPI:
    """Build the app around a runtime that `lifespan` starts and closes."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await runtime.start()
        yield
        await runtime.close()

    app = FastAPI(
        title="Order Service",
        version="0.1.0",
        description="Order matching with held funds, price-time priority books and a durable journal. "
                    "See API.md for the contract.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    for module in (admin, assets, orders, accounts):
        app.include_router(module.router)
    app.include_router(health.router)
    install_error_handlers(app)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return error_response(ApiError(413, "PAYLOAD_TOO_LARGE", "The body is larger than 1 MiB"))
        return await call_next(request)

    return app
