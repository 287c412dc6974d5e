"""Health probe answers: plain JSON without the envelope; details beside the seed's fields."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class HealthData(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["healthy", "starting", "unhealthy"]
    timestamp: str
    service: str
    version: str
    uptime: float
    database: dict[str, Any] | str
    actors: dict[str, Any]


class HealthReadyData(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["ready", "not_ready"]
    timestamp: str


class HealthLiveData(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["alive"]
    timestamp: str
