"""Service configuration and routing: pure functions of configuration.

Every gateway process computes the same routes from the same configuration:
a username always lands on the same account shard, an asset on the same book
actor. The counts are fixed for a data directory (see `check_layout`), since
moving an account between shards would need a migration; on a cluster they are
also recorded in the cluster (actors.remote), so every gateway routes alike.

Each actor is placed by a Ray node label named after its stream
(`placement_label`: `order-service/shard-1`): only a node that holds that
journal carries it.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from journal.lmdb_journal import DEFAULT_MAP_SIZE

ORDER_ID_SHARD_BITS = 8  # an order id is (shard-local sequence << 8) | shard index
MAX_SHARDS = 1 << ORDER_ID_SHARD_BITS


def _default_actor_count() -> int:
    """One account shard and one book actor per two cores (1–8 of each).

    Each actor is a process of its own, and every Ray call between them costs CPU on
    both sides: on 2 cores one shard and one book actor served 1.3× the single orders
    and 1.2× the batched orders of two of each (bench/http_bench.py)."""
    return max(1, min((os.cpu_count() or 2) // 2, 8))


def recorded_layout(data_dir: Path) -> dict[str, int]:
    """The shard and book counts a data directory was created with ({} for a new one): the one
    reader of `layout.json`."""
    try:
        return json.loads((Path(data_dir) / "layout.json").read_text())
    except FileNotFoundError:
        return {}


@dataclass(frozen=True)
class ServiceConfig:
    """Where the state lives and how it is split across actors."""

    data_dir: Path
    shard_count: int = field(default_factory=_default_actor_count)
    book_actor_count: int = field(default_factory=_default_actor_count)
    sync: bool = True
    namespace: str = "order-service"
    # Snapshots hold hot state only, so they are small and taken often: after this many events,
    # or this many seconds with any event. Recovery replays at most that much after the last one.
    snapshot_every: int = 100_000
    snapshot_seconds: float = 60.0
    journal_retention: int | None = None  # records kept before the latest snapshot; None: all
    journal_map_size: int = DEFAULT_MAP_SIZE  # each journal's first LMDB map, in bytes; it doubles when full
    # Per-user rate limits (API.md): order operations and other user requests a second; 0: off.
    order_rate: float = 0.0
    read_rate: float = 0.0
    # Issue 12: a shard sends an order to its book while the hold is being journaled (the two
    # commits in parallel) when that is safe (actors/shard_actor.py); off: always hold first.
    early_send: bool = True
    # Fault injection for tests: named points where an actor process dies once (see actors.faults).
    crash_points: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not 1 <= self.shard_count <= MAX_SHARDS:
            raise ValueError(f"shard_count must be between 1 and {MAX_SHARDS}")
        if self.book_actor_count < 1:
            raise ValueError("book_actor_count must be at least 1")
        if self.order_rate < 0 or self.read_rate < 0:
            raise ValueError("rate limits are 0 (off) or positive")
        if self.journal_map_size < 1:
            raise ValueError("journal_map_size must be a positive number of bytes")
        object.__setattr__(self, "data_dir", Path(self.data_dir).resolve())

    def journal_path(self, stream: str) -> Path:
        return self.data_dir / "journals" / stream

    def actor_name(self, stream: str) -> str:
        return f"{self.namespace}:{stream}"

    def streams(self) -> list[str]:
        """Every actor's stream: the registry, the shards, the books."""
        return ["registry", *(f"shard-{index}" for index in range(self.shard_count)),
                *(f"book-{index}" for index in range(self.book_actor_count))]

    def placement_label(self, stream: str) -> str:
        """The Ray node label that says a node holds this stream's journal: `NAMESPACE/STREAM`."""
        return f"{self.namespace}/{stream}"

    def layout(self) -> dict[str, int]:
        return {"shard_count": self.shard_count, "book_actor_count": self.book_actor_count}


def stable_hash(text: str) -> int:
    """Hash a string the same way in every process (unlike the salted `hash()`)."""
    return zlib.crc32(text.encode())


def shard_for(username: str, shard_count: int) -> int:
    """Return the index of the shard that owns this account."""
    return stable_hash(username) % shard_count


def book_actor_for(asset_id: str, book_actor_count: int) -> int:
    """Return the index of the book actor that owns this asset."""
    return stable_hash(asset_id) % book_actor_count


def make_order_id(local_sequence: int, shard_index: int) -> int:
    return (local_sequence << ORDER_ID_SHARD_BITS) | shard_index


def check_layout(config: ServiceConfig) -> None:
    """Record the shard and book counts of a data directory, or refuse a different layout."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    path = config.data_dir / "layout.json"
    layout = config.layout()
    recorded = recorded_layout(config.data_dir)
    if recorded:
        if recorded != layout:
            raise ValueError(
                f"{config.data_dir} was created with {recorded}; this configuration asks for {layout}"
            )
        return
    # Several actors of one node may record it at once: each writes its own file, and the
    # last rename wins with the same content.
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(layout))
    os.replace(temporary, path)
