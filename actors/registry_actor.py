"""The registry: users with their API key hashes, and asset definitions.

It is the only writer of both. A user's API key is never stored, only its
SHA-256 hash (the keys are long random strings, so a fast hash is the right
one). A new asset is journaled here first, then opened on its book actor and
made known to every shard; at start the registry announces every asset again,
so a crash between those steps leaves nothing half-created.
"""

from __future__ import annotations

import asyncio
import logging
import os

import ray

from actors.config import ServiceConfig, book_actor_for
from actors.journaled import JournaledState
from actors.records import REGISTRY_RECORDS, AssetDefined, UserCreated
from actors.retry import call_with_retry
from engine import AssetSpec, RejectReason
from engine.numbers import USD

log = logging.getLogger(__name__)


class RegistryActor:
    """Users and assets of one service."""

    def __init__(self, config: ServiceConfig, replay_until: int | None = None) -> None:
        self.config = config
        self.users: dict[str, tuple[str, int]] = {}  # username -> (key hash, created_at)
        self.key_hashes: dict[str, str] = {}  # key hash -> username
        self.assets: dict[str, AssetSpec] = {}
        self._handles: dict[str, ray.actor.ActorHandle] = {}
        self._ready: asyncio.Task | None = None
        self.store = JournaledState(config.journal_path("registry"), sync=config.sync,
                                    snapshot=self._snapshot_state, snapshot_every=config.snapshot_every,
                                    snapshot_seconds=config.snapshot_seconds, retention=config.journal_retention,
                                    map_size=config.journal_map_size)
        self.store.replay(self._load_state, lambda raw: self._apply(REGISTRY_RECORDS.decode(raw)),
                          until=replay_until)

    async def ready(self) -> bool:
        """Announce every asset to its book and the shards; answer once done."""
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_task(self._announce_all())
        await asyncio.shield(self._ready)
        return True

    async def create_user(self, username: str, key_hash: str, created_at: int) -> str | None:
        """Register a user; return a RejectReason value if the name is taken."""
        if username in self.users:
            return RejectReason.USER_EXISTS.value
        await self._record(UserCreated(username, key_hash, created_at))
        return None

    async def authenticate(self, key_hash: str) -> str | None:
        """Return the username whose key has this hash, or None."""
        return self.key_hashes.get(key_hash)

    async def user_exists(self, username: str) -> bool:
        return username in self.users

    async def create_asset(self, spec: AssetSpec) -> str | None:
        """Define an asset and open its book; return a RejectReason value if refused."""
        if spec.asset_id in self.assets or spec.asset_id == USD:
            return RejectReason.ASSET_EXISTS.value
        await self._record(AssetDefined(spec.to_record()))
        await self._announce(spec)
        return None

    async def flush(self) -> int:
        """Wait until every change made so far is durable."""
        return await self.store.flush()

    async def pid(self) -> int:
        return os.getpid()

    async def assets_list(self) -> list[AssetSpec]:
        return list(self.assets.values())

    # ---- internals -----------------------------------------------------

    async def _announce_all(self) -> None:
        for spec in list(self.assets.values()):
            await self._announce(spec)

    async def _announce(self, spec: AssetSpec) -> None:
        # The book first: a shard that knows an asset may send it orders at once.
        book = f"book-{book_actor_for(spec.asset_id, self.config.book_actor_count)}"
        await self._call(book, "list_asset", spec)
        await asyncio.gather(*(self._call(f"shard-{shard}", "list_asset", spec)
                               for shard in range(self.config.shard_count)))

    async def _call(self, stream: str, method: str, *args):
        return await call_with_retry(
            lambda: getattr(self._handle(stream), method).remote(*args),
            lambda: self._handles.pop(stream, None))

    def _handle(self, stream: str) -> ray.actor.ActorHandle:
        handle = self._handles.get(stream)
        if handle is None:
            handle = self._handles[stream] = ray.get_actor(self.config.actor_name(stream),
                                                           namespace=self.config.namespace)
        return handle

    async def _record(self, record: UserCreated | AssetDefined) -> None:
        self._apply(record)
        await self.store.append([REGISTRY_RECORDS.encode(record)])

    def _apply(self, record: UserCreated | AssetDefined) -> None:
        if type(record) is UserCreated:
            self.users[record.username] = (record.key_hash, record.created_at)
            self.key_hashes[record.key_hash] = record.username
        else:
            spec = AssetSpec.from_record(record.asset)
            self.assets[spec.asset_id] = spec

    def _snapshot_state(self) -> dict:
        return {"users": [[name, key_hash, created] for name, (key_hash, created) in self.users.items()],
                "assets": [spec.to_record() for spec in self.assets.values()]}

    def _load_state(self, state: dict) -> None:
        for username, key_hash, created_at in state["users"]:
            self._apply(UserCreated(username, key_hash, created_at))
        for record in state["assets"]:
            self._apply(AssetDefined(record))

    async def metrics(self) -> dict:
        """Figures for /metrics, gathered once per scrape: journal and memory."""
        return self.store.metrics("registry")
