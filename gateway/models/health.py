"""Health probe answers: plain JSON without the envelope; the seed's `HealthResponse`,
`HealthReadyResponse` and `HealthLiveResponse` fields, details beside them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class HealthData(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["healthy", "starting", "unhealthy"]
    timestamp: str
    service: str
    version: str
    uptime: float
    database: str = Field(description='"ok", "recovering" or "error: <why>"')
    journal: dict[str, Any] = Field(description="The journal's details (no filesystem paths)")
    actors: dict[str, Any]
    streams: dict[str, int] = Field(description="This gateway process's WebSocket connections and subscriptions")


class HealthReadyData(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["ready", "not_ready"]
    timestamp: str
    database: str = Field(description='"ok", "recovering" or "error: <why>"')
    external_services: dict[str, str] = Field(
        description='Each actor role ("registry", "shard-N", "book-N") and "ok" or what it waits for')


class HealthLiveData(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["alive"]
    timestamp: str
    service: str
    version: str
