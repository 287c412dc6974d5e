"""Health probes: plain JSON, no envelope, no authentication."""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Request

from gateway.models.health import HealthData, HealthLiveData, HealthReadyData
from gateway.responses import plain_json, utc_now_iso

router = APIRouter(tags=["health"])
SERVICE = "order-service"

try:
    VERSION = version("order-service")
except PackageNotFoundError:  # running from a source tree that was not installed
    VERSION = "0.0.0"


def _database(runtime) -> str:
    """The seed's `database` string: "ok", "recovering" or "error: <why>"."""
    if runtime.ready:
        return "ok"
    return f"error: {runtime.failure}" if runtime.failure else "recovering"


@router.get("/health", response_model=HealthData)
async def health(request: Request):
    """Overall state: recovery, journal, actors and this process's streams. No filesystem paths:
    the route is public."""
    runtime = request.app.state.runtime
    status = "healthy" if runtime.ready else ("unhealthy" if runtime.failure else "starting")
    config = runtime.config
    return plain_json({
        "status": status,
        "timestamp": utc_now_iso(),
        "service": SERVICE,
        "version": VERSION,
        "uptime": round(time.monotonic() - runtime.started_at, 3),
        "database": _database(runtime),
        "journal": {"type": "lmdb", "sync": config.sync, "recovery_seconds": runtime.recovery_seconds},
        "actors": {"account_shards": config.shard_count, "book_actors": config.book_actor_count,
                   "namespace": config.namespace, "ready": runtime.ready},
        "streams": request.app.state.streams.stats(),
    })


@router.get("/health/ready", response_model=HealthReadyData, responses={
    503: {"model": HealthReadyData, "description": "Recovering: `status` is not_ready"}})
async def ready(request: Request):
    """200 once recovery is done, 503 before."""
    runtime = request.app.state.runtime
    waiting = "ok" if runtime.ready else (f"error: {runtime.failure}" if runtime.failure else "recovering")
    config = runtime.config
    services = {"registry": waiting,
                **{f"shard-{index}": waiting for index in range(config.shard_count)},
                **{f"book-{index}": waiting for index in range(config.book_actor_count)}}
    body = {"status": "ready" if runtime.ready else "not_ready", "timestamp": utc_now_iso(),
            "database": _database(runtime), "external_services": services,
            "recovery_seconds": runtime.recovery_seconds}
    return plain_json(body, 200 if runtime.ready else 503)


@router.get("/health/live", response_model=HealthLiveData)
async def live():
    """200 while the process serves."""
    return plain_json({"status": "alive", "timestamp": utc_now_iso(), "service": SERVICE, "version": VERSION})
