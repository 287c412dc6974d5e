"""The service's configuration, read once from the environment (see API.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from actors.config import ServiceConfig, recorded_layout


def _default_workers() -> int:
    """One gateway process per two cores: the actors and Ray need the rest (bench/README.md)."""
    return max(1, (os.cpu_count() or 2) // 2)


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _rate(value: str | None) -> float:
    """A per-second rate limit: unset, empty or 0 is off."""
    rate = float(value) if value and value.strip() else 0.0
    if not rate >= 0 or rate == float("inf"):
        raise ValueError(f"not a rate (a number >= 0): {value!r}")
    return rate


@dataclass(frozen=True)
class Settings:
    """Everything `order-service serve` needs to know."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./data")
    admin_token: str | None = None
    sync: bool = True
    ray_address: str | None = None
    shard_count: int | None = None
    book_actor_count: int | None = None
    namespace: str = "order-service"
    journal_map_size: int | None = None
    metrics: bool = True
    snapshot_events: int | None = None
    snapshot_seconds: float | None = None
    journal_retention: int | None = None
    workers: int = 1
    order_rate: float = 0.0
    read_rate: float = 0.0
    early_send: bool = True

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read the ORDER_SERVICE_* variables and RAY_ADDRESS."""
        env = os.environ if environ is None else environ

        def optional_int(name: str) -> int | None:
            return int(env[name]) if env.get(name) else None

        return cls(
            host=env.get("ORDER_SERVICE_HOST", "127.0.0.1"),
            port=int(env.get("ORDER_SERVICE_PORT", "8000")),
            data_dir=Path(env.get("ORDER_SERVICE_DATA_DIR", "./data")).resolve(),
            admin_token=env.get("ORDER_SERVICE_ADMIN_TOKEN") or None,
            sync=_flag(env.get("ORDER_SERVICE_SYNC", "true")),
            ray_address=env.get("RAY_ADDRESS") or None,
            shard_count=optional_int("ORDER_SERVICE_SHARDS"),
            book_actor_count=optional_int("ORDER_SERVICE_BOOK_ACTORS"),
            namespace=env.get("ORDER_SERVICE_NAMESPACE", "order-service"),
            journal_map_size=optional_int("ORDER_SERVICE_JOURNAL_MAP_SIZE"),
            metrics=_flag(env.get("ORDER_SERVICE_METRICS", "true")),
            snapshot_events=optional_int("ORDER_SERVICE_SNAPSHOT_EVENTS"),
            snapshot_seconds=float(env["ORDER_SERVICE_SNAPSHOT_SECONDS"]) if env.get("ORDER_SERVICE_SNAPSHOT_SECONDS")
            else None,
            journal_retention=optional_int("ORDER_SERVICE_JOURNAL_RETENTION"),
            workers=optional_int("ORDER_SERVICE_WORKERS") or _default_workers(),
            order_rate=_rate(env.get("ORDER_SERVICE_ORDER_RATE")),
            read_rate=_rate(env.get("ORDER_SERVICE_READ_RATE")),
            early_send=_flag(env.get("ORDER_SERVICE_EARLY_SEND", "true")),
        )

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("ORDER_SERVICE_WORKERS must be at least 1")

    def service_config(self, cluster_layout: dict[str, int] | None = None) -> ServiceConfig:
        """The actors' configuration: the counts asked for, else the ones the cluster recorded
        (`cluster_layout`), else the data directory's, else the defaults."""
        # An existing data directory keeps the layout it was created with unless one is asked for.
        chosen = {**recorded_layout(self.data_dir), **(cluster_layout or {})}
        if self.shard_count:
            chosen["shard_count"] = self.shard_count
        if self.book_actor_count:
            chosen["book_actor_count"] = self.book_actor_count
        if self.journal_map_size:
            chosen["journal_map_size"] = self.journal_map_size
        if self.snapshot_events:
            chosen["snapshot_every"] = self.snapshot_events
        if self.snapshot_seconds:
            chosen["snapshot_seconds"] = self.snapshot_seconds
        if self.journal_retention is not None:
            chosen["journal_retention"] = self.journal_retention
        return ServiceConfig(data_dir=self.data_dir, sync=self.sync, namespace=self.namespace,
                             order_rate=self.order_rate, read_rate=self.read_rate, early_send=self.early_send,
                             **chosen)
