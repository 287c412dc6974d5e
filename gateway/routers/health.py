"""Health probes: plain JSON, no envelope, no authentication.

`/health/ready` answers 200 once this gateway process has recovered, and names in
`external_services` each actor that is not serving and what it waits for: an
actor whose node is gone waits, pending, for a node with its label, while the
others serve on (a gateway stays ready: it still serves every account and asset
whose actors are up).
"""

from __future__ import annotations

import logging
import time
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Request

from gateway.models.health import HealthData, HealthLiveData, HealthReadyData
from gateway.responses import plain_json, utc_now_iso

router = APIRouter(tags=["health"])
SERVICE = "order-service"
log = logging.getLogger(__name__)

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
    body = {"status": "ready" if runtime.ready else "not_ready", "timestamp": utc_now_iso(),
            "database": _database(runtime), "external_services": await _actor_tier(runtime),
            "recovery_seconds": runtime.recovery_seconds}
    return plain_json(body, 200 if runtime.ready else 503)


@router.get("/health/live", response_model=HealthLiveData)
async def live():
    """200 while the process serves."""
    return plain_json({"status": "alive", "timestamp": utc_now_iso(), "service": SERVICE, "version": VERSION})


async def _actor_tier(runtime) -> dict[str, str]:
    """Each actor → "ok", what it waits for (its node), or "recovering" until recovery is done;
    every actor "unknown" if Ray cannot say now."""
    try:
        tier = await runtime.actor_tier()
    except Exception:  # a probe answers whatever Ray's state service does
        log.warning("could not read where the actors are", exc_info=True)
        return {stream: "unknown" for stream in runtime.config.streams()}
    if runtime.ready:
        return tier
    waiting = f"error: {runtime.failure}" if runtime.failure else "recovering"
    return {stream: waiting if state == "ok" else state for stream, state in tier.items()}
