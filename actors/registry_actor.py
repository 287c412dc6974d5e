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
from actors.senders import call_with_retry
from engine import AssetSpec, Rejected, RejectReason
from engine.numbers import USD

log = logging.getLogger(__name__)


class RegistryActor:
    """Users and assets of one service."""

    def __init__(self, config: ServiceConfig, replay_until: int | None = None) -> None:
        self.config = config
        self.users: dict[str, tuple[str, int]] = {}  # username -> (key hash, created_at)
        self.key_hashes: dict[str, str] = {}  # key hash -> username
        self.assets: dict[str, list] = {}  # asset_id -> spec record
        self._handles: dict[str, ray.actor.ActorHandle] = {}
        self._ready: asyncio.Task | None = None
        self.store = JournaledState(config.journal_path("registry"), sync=config.sync,
                                    snapshot_every=config.snapshot_every, map_size=config.journal_map_size)
        self.store.replay(self._load_state, self._apply, until=replay_until)

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
        record = ["user", username, key_hash, created_at]
        self._apply(record)
        await self.store.append([record], snapshot=self._snapshot_state)
        return None

    async def authenticate(self, key_hash: str) -> str | None:
        """Return the username whose key has this hash, or None."""
        return self.key_hashes.get(key_hash)

    async def user_exists(self, username: str) -> bool:
        return username in self.users

    async def create_asset(self, record: list) -> str | None:
        """Define an asset and open its book; return a RejectReason value if refused."""
        try:
            spec = AssetSpec.from_record(record)
        except Rejected as rejected:
            return rejected.reason.value
        if spec.asset_id in self.assets or spec.asset_id == USD:
            return RejectReason.ASSET_EXISTS.value
        record = ["asset", spec.to_record()]
        self._apply(record)
        await self.store.append([record], snapshot=self._snapshot_state)
        await self._announce(record[1])
        return None

    async def flush(self) -> int:
        """Wait until every change made so far is durable."""
        return await self.store.flush()

    async def pid(self) -> int:
        return os.getpid()

    async def assets_list(self) -> list[list]:
        return list(self.assets.values())

    # ---- internals -----------------------------------------------------

    async def _announce_all(self) -> None:
        for record in list(self.assets.values()):
            await self._announce(record)

    async def _announce(self, record: list) -> None:
        # The book first: a shard that knows an asset may send it orders at once.
        book = f"book-{book_actor_for(record[0], self.config.book_actor_count)}"
        await self._call(book, "list_asset", record)
        await asyncio.gather(*(self._call(f"shard-{shard}", "list_asset", record)
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

    def _apply(self, record: list) -> None:
        if record[0] == "user":
            _, username, key_hash, created_at = record
            self.users[username] = (key_hash, created_at)
            self.key_hashes[key_hash] = username
        elif record[0] == "asset":
            self.assets[record[1][0]] = record[1]

    def _snapshot_state(self) -> dict:
        return {"users": [[name, key_hash, created] for name, (key_hash, created) in self.users.items()],
                "assets": list(self.assets.values())}

    def _load_state(self, state: dict) -> None:
        for username, key_hash, created_at in state["users"]:
            self._apply(["user", username, key_hash, created_at])
        for record in state["assets"]:
            self._apply(["asset", record])
