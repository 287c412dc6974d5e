"""Metrics: the service's figures in Prometheus text format, for the admin token only."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.deps import Admin, Service
from gateway.models.errors import ADMIN_AUTH, error_responses

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response,
            responses={200: {"description": "Prometheus text exposition format",
                             "content": {"text/plain": {"schema": {"type": "string"}}}},
                       **error_responses(ADMIN_AUTH)})
async def metrics(_: Admin, service: Service):
    """Every gateway process's series and each actor's own figures (see gateway/metrics.py)."""
    return Response(await service.metrics.scrape(service.client), media_type=CONTENT_TYPE_LATEST)
