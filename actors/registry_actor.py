"""The registry: users with their API keys, asset definitions, and the audit log.

It is the only writer of all three. A user's API keys are stored only as hashes
(actors/user_keys.py); revoked ones leave memory for the disk (actors/revoked_keys.py).
A new asset is journaled here first, then opened on its book actor and made known to
every shard; at start the registry announces every asset again, so a crash between
those steps leaves nothing half-created.

Suspension is journaled here first, then carried out by the user's account shard
(which journals it too, refuses the user's orders from then on, and cancels the
open ones through the books). At start the registry tells every shard which of its
users are suspended, so a crash between the two journals is finished then.

Every change a gateway's cache must hear of (a key revoked, a user suspended or
resumed) gets an epoch; gateways long-poll `access_changes` (gateway/access.py).
Every admin action and key rotation is journaled as an `AuditLogged` record in the
same append as the action's own records (actors/audit_log.py keeps it on disk).
"""

from __future__ import annotations

import asyncio
import logging
import os

import ray

from actors.audit_log import TABLES as AUDIT_TABLES, AuditLog, entry_writes
from actors.config import ServiceConfig, book_actor_for, shard_for
from actors.faults import crash_point
from actors.journaled import JournaledState
from actors.records import (
    REGISTRY_RECORDS, AssetDefined, AuditLogged, KeyCreated, KeyRevoked, UserCreated, UserResumed, UserSuspended,
)
from actors.retry import call_with_retry
from actors.revoked_keys import TABLES as REVOKED_TABLES, RevokedKeys, revoked_key_writes
from actors.user_keys import MAX_LIVE_KEYS, AccessChanges, UserKeys
from engine import AssetSpec, RejectReason
from engine.numbers import USD

log = logging.getLogger(__name__)

# Refusals of the registry beside the engine's `RejectReason` values.
TOO_MANY_KEYS, KEY_NOT_FOUND, KEY_NOT_LIVE, USER_SUSPENDED = (
    "TOO_MANY_KEYS", "KEY_NOT_FOUND", "KEY_NOT_LIVE", "USER_SUSPENDED")


class RegistryActor:
    """Users, keys, assets and the audit log of one service."""

    def __init__(self, config: ServiceConfig, replay_until: int | None = None, offline: bool = False) -> None:
        """Recover from the journal. `offline` (verify, replay): create nothing on disk."""
        self.config = config
        self.user_keys = UserKeys()
        self.assets: dict[str, AssetSpec] = {}
        self.changes = AccessChanges()
        self._handles: dict[str, ray.actor.ActorHandle] = {}
        self._ready: asyncio.Task | None = None
        self.store = JournaledState(config.journal_path("registry"), sync=config.sync,
                                    snapshot=self._snapshot_state, snapshot_every=config.snapshot_every,
                                    snapshot_seconds=config.snapshot_seconds, retention=config.journal_retention,
                                    map_size=config.journal_map_size, tables={**AUDIT_TABLES, **REVOKED_TABLES},
                                    create_tables=not offline)
        self.audit_log = AuditLog(self.store.journal.reading)
        self.revoked_keys = RevokedKeys(self.store.journal.reading)
        self.store.replay(self._load_state, lambda raw: self._apply(REGISTRY_RECORDS.decode(raw)),
                          until=replay_until)
        revoked = self.user_keys.take_revoked()
        if revoked and not offline:  # on disk already but for a journal from before: the same puts
            self.store.writer.submit([], revoked_key_writes(revoked)).result()

    @property
    def users(self) -> dict:
        return self.user_keys.users

    async def ready(self) -> bool:
        """Announce every asset to its book and the shards, and every suspension to its shard;
        answer once done."""
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_task(self._announce_all())
        await asyncio.shield(self._ready)
        return True

    # ---- users and keys ------------------------------------------------

    async def create_user(self, username: str, key_hash: str, created_at: int) -> list:
        """Register a user with its first key; answer `[RejectReason value or None, key_id]`."""
        if username in self.users:
            return [RejectReason.USER_EXISTS.value, None]
        key_id = self.user_keys.unused_key_id(self.revoked_keys.key)
        await self._record([UserCreated(username, key_hash, created_at, key_id)], [
            ("admin", "user_created", username, {"key_id": key_id}),
            ("admin", "key_created", key_id, {"username": username})], created_at)
        return [None, key_id]

    async def create_key(self, username: str, key_hash: str, created_at: int) -> list:
        """Add a key to a user; answer `[refusal or None, key_id]`."""
        if username not in self.users:
            return [RejectReason.UNKNOWN_USER.value, None]
        if self.user_keys.live_keys(username) >= MAX_LIVE_KEYS:
            return [TOO_MANY_KEYS, None]
        key_id = self.user_keys.unused_key_id(self.revoked_keys.key)
        await self._record([KeyCreated(username, key_id, key_hash, created_at)],
                           [("admin", "key_created", key_id, {"username": username})], created_at)
        return [None, key_id]

    async def revoke_key(self, username: str, key_id: str, timestamp: int) -> str | None:
        """Revoke a user's key (again: nothing changes); answer a refusal or None."""
        if username not in self.users:
            return RejectReason.UNKNOWN_USER.value
        key = self.user_keys.keys.get(key_id) or self.revoked_keys.key(key_id)
        if key is None or key.username != username:
            return KEY_NOT_FOUND
        if key.revoked_at is None:
            await self._record([KeyRevoked(username, key_id, timestamp)],
                               [("admin", "key_revoked", key_id, {"username": username})], timestamp)
        return None

    async def rotate_key(self, key_hash: str, new_key_hash: str, timestamp: int) -> list:
        """Replace the calling live key by a new one in one step; answer `[refusal or None, username, key_id]`."""
        key = self.user_keys.by_hash(key_hash)
        if key is None:
            return [KEY_NOT_LIVE, None, None]
        username = key.username
        if self.users[username].suspended:
            return [USER_SUSPENDED, username, None]
        key_id = self.user_keys.unused_key_id(self.revoked_keys.key)
        await self._record([KeyCreated(username, key_id, new_key_hash, timestamp),
                            KeyRevoked(username, key.key_id, timestamp)],
                           [(username, "key_rotated", key.key_id, {"username": username, "new_key_id": key_id})],
                           timestamp)
        return [None, username, key_id]

    async def authenticate(self, key_hash: str) -> list | None:
        """The owner of a live key: `[username, key_id, suspended, epoch]`, or None. `epoch`: the
        access changes this answer already reflects."""
        key = self.user_keys.by_hash(key_hash)
        if key is None:
            return None
        return [key.username, key.key_id, self.users[key.username].suspended, self.changes.epoch]

    async def user_exists(self, username: str) -> bool:
        return username in self.users

    async def user(self, username: str) -> dict | None:
        """A user with every key's id and times (never a key or hash), or None."""
        return self._user_view(username)

    async def touch_keys(self, key_hashes: list[str], timestamp: int) -> None:
        """Note that these keys were used by `timestamp` (kept in snapshots, not journaled)."""
        for key_hash in key_hashes:
            key = self.user_keys.by_hash(key_hash)
            if key is not None and (key.last_used_at or 0) < timestamp:
                key.last_used_at = timestamp

    async def set_suspended(self, username: str, suspended: bool, timestamp: int) -> list:
        """Suspend or resume a user: journaled here, then carried out by the user's shard (cancelling
        its open orders on suspension). Answer `[refusal or None, the user]`."""
        user = self.users.get(username)
        if user is None:
            return [RejectReason.UNKNOWN_USER.value, None]
        if user.suspended != suspended:
            record = UserSuspended(username, timestamp) if suspended else UserResumed(username, timestamp)
            action = "user_suspended" if suspended else "user_resumed"
            await self._record([record], [("admin", action, username, {})], timestamp)
            crash_point(self.config, "registry.after_suspend")
        # Again when nothing changed here: a shard that missed it (a crash between) catches up.
        await self._call(f"shard-{shard_for(username, self.config.shard_count)}", "set_suspended", username,
                         suspended, timestamp)
        return [None, self._user_view(username)]

    async def access_changes(self, incarnation: str | None, epoch: int, timeout: float) -> list:
        """Long-poll the changes gateways must apply to their caches (see `AccessChanges.since`)."""
        return await self.changes.since(incarnation, epoch, timeout)

    # ---- audit log -----------------------------------------------------

    async def log_action(self, actor: str, action: str, target: str, details: dict, timestamp: int) -> int:
        """Journal an audit entry of an action done elsewhere (a deposit, a withdrawal); answer its id."""
        entry = self.audit_log.entry(timestamp, actor, action, target, details)
        await self.store.append([REGISTRY_RECORDS.encode(entry)], entry_writes(entry))
        return entry.entry_id

    async def audit_page(self, action: str | None, username: str | None, limit: int, offset: int) -> list:
        """Audit entries newest first: `[entries, total]`."""
        entries, total = self.audit_log.page(action, username, limit, offset)
        return [entries, total]

    # ---- assets --------------------------------------------------------

    async def create_asset(self, spec: AssetSpec, timestamp: int, details: dict | None = None) -> str | None:
        """Define an asset and open its book; return a RejectReason value if refused. `details`: of
        its audit entry (the sizes as the admin wrote them)."""
        if spec.asset_id in self.assets or spec.asset_id == USD:
            return RejectReason.ASSET_EXISTS.value
        await self._record([AssetDefined(spec.to_record())],
                           [("admin", "asset_created", spec.asset_id, details or {})], timestamp)
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
        suspended: dict[int, list[str]] = {shard: [] for shard in range(self.config.shard_count)}
        for user in self.users.values():
            if user.suspended:
                suspended[shard_for(user.username, self.config.shard_count)].append(user.username)
        await asyncio.gather(*(self._call(f"shard-{shard}", "sync_suspended", usernames)
                               for shard, usernames in suspended.items()))

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

    async def _record(self, records: list, audit: list[tuple[str, str, str, dict]], timestamp: int) -> None:
        """Apply records with their audit entries, tell the gateways what they must hear, and journal
        them all in one append (one transaction)."""
        entries = [self.audit_log.entry(timestamp, *entry) for entry in audit]
        writes = [write for entry in entries for write in entry_writes(entry)]
        for record in records:
            self._apply(record)
            self._announce_change(record)
        writes += revoked_key_writes(self.user_keys.take_revoked())  # out of memory, onto disk
        await self.store.append([REGISTRY_RECORDS.encode(record) for record in (*records, *entries)], writes)

    def _announce_change(self, record) -> None:
        kind = type(record)
        if kind is KeyRevoked:
            key = next((key for key in self.user_keys.revoked if key.key_id == record.key_id), None)
            if key is not None:
                self.changes.add(["key", key.key_hash])
        elif kind is UserSuspended:
            self.changes.add(["suspended", record.username])
        elif kind is UserResumed:
            self.changes.add(["resumed", record.username])

    def _apply(self, record) -> None:
        kind = type(record)
        if kind is AssetDefined:
            spec = AssetSpec.from_record(record.asset)
            self.assets[spec.asset_id] = spec
        elif kind is AuditLogged:
            self.audit_log.replayed(record)
        else:
            self.user_keys.apply(record)

    def _user_view(self, username: str) -> dict | None:
        return self.user_keys.user_view(username, self.revoked_keys.of_user(username))

    def _snapshot_state(self) -> dict:
        return {**self.user_keys.to_state(), "assets": [spec.to_record() for spec in self.assets.values()],
                "audit_last_id": self.audit_log.last_id}

    def _load_state(self, state: dict) -> None:
        self.user_keys.load_state(state)
        for record in state["assets"]:
            self._apply(AssetDefined(record))
        self.audit_log.last_id = state.get("audit_last_id", 0)

    async def metrics(self) -> dict:
        """Figures for /metrics, gathered once per scrape: journal and memory."""
        return self.store.metrics("registry")
