"""Users and their API keys as the registry holds them: state rebuilt from its records.

A key is stored only as the SHA-256 hash of the key (keys are long random strings, so a fast
hash is the right one), under a short public id. Revoked keys stay listed, with when they
were revoked, but no longer authenticate. A user has at most `MAX_LIVE_KEYS` live keys.
Memory holds the live keys only: a revoked key leaves it (`take_revoked`) for the registry's
table on disk (actors/revoked_keys.py), so rotating keys for ever does not grow memory.

Beside the state, `AccessChanges` numbers every change that must reach the gateways'
caches (a key revoked, a user suspended or resumed) with an epoch, for their long polls.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections import deque
from collections.abc import Callable

from actors.records import KeyCreated, KeyRevoked, UserCreated, UserResumed, UserSuspended

MAX_LIVE_KEYS = 10
CHANGES_KEPT = 10_000  # a gateway further behind than this starts again from the whole state


def derived_key_id(key_hash: str) -> str:
    """The id of a key created before keys had ids: derived from its hash, the same at every replay
    (a hash of the hash: the id shows nothing of the stored hash)."""
    return "k" + hashlib.sha256(b"key-id:" + key_hash.encode()).hexdigest()[:12]


def new_key_id() -> str:
    return "k" + secrets.token_hex(6)


class Key:
    __slots__ = ("key_id", "username", "key_hash", "created_at", "revoked_at", "last_used_at")

    def __init__(self, key_id: str, username: str, key_hash: str, created_at: int,
                 revoked_at: int | None = None, last_used_at: int | None = None) -> None:
        self.key_id = key_id
        self.username = username
        self.key_hash = key_hash
        self.created_at = created_at
        self.revoked_at = revoked_at
        self.last_used_at = last_used_at

    def to_record(self) -> list:
        return [self.key_id, self.username, self.key_hash, self.created_at, self.revoked_at, self.last_used_at]


class User:
    __slots__ = ("username", "created_at", "suspended", "key_ids")

    def __init__(self, username: str, created_at: int, suspended: bool = False) -> None:
        self.username = username
        self.created_at = created_at
        self.suspended = suspended
        self.key_ids: list[str] = []


class UserKeys:
    """Every user and key of a service."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.keys: dict[str, Key] = {}  # live keys only
        self.live: dict[str, str] = {}  # key hash -> key id
        self.revoked: list[Key] = []  # revoked since `take_revoked` was last called, for the disk

    def apply(self, record) -> None:
        kind = type(record)
        if kind is UserCreated:
            self.users[record.username] = User(record.username, record.created_at)
            key_id = record.key_id or derived_key_id(record.key_hash)
            self._add_key(Key(key_id, record.username, record.key_hash, record.created_at))
        elif kind is KeyCreated:
            self._add_key(Key(record.key_id, record.username, record.key_hash, record.created_at))
        elif kind is KeyRevoked:
            key = self.keys.pop(record.key_id, None)
            if key is not None:  # else revoked before: a journal from before kept both records
                key.revoked_at = record.revoked_at
                self._drop(key)
        elif kind is UserSuspended:
            self.users[record.username].suspended = True
        elif kind is UserResumed:
            self.users[record.username].suspended = False
        else:
            raise TypeError(f"not a user or key record: {record!r}")

    def _add_key(self, key: Key) -> None:
        if key.revoked_at is not None:  # from a snapshot written before revoked keys went to disk
            self.revoked.append(key)
            return
        self.keys[key.key_id] = key
        self.users[key.username].key_ids.append(key.key_id)
        self.live[key.key_hash] = key.key_id

    def _drop(self, key: Key) -> None:
        self.live.pop(key.key_hash, None)
        self.users[key.username].key_ids.remove(key.key_id)
        self.revoked.append(key)

    def take_revoked(self) -> list[Key]:
        """Hand over the keys revoked since the last call (they are no longer in memory)."""
        revoked, self.revoked = self.revoked, []
        return revoked

    def live_keys(self, username: str) -> int:
        return len(self.users[username].key_ids)

    def unused_key_id(self, revoked: Callable[[str], Key | None]) -> str:
        """A new key id, used by no live key nor by any revoked one (`revoked`: the disk's look-up)."""
        while True:
            key_id = new_key_id()
            if key_id not in self.keys and revoked(key_id) is None:
                return key_id

    def by_hash(self, key_hash: str) -> Key | None:
        key_id = self.live.get(key_hash)
        return None if key_id is None else self.keys[key_id]

    def user_view(self, username: str, revoked: list[Key]) -> dict | None:
        """A user as the admin sees it, with its live keys and those `revoked` (from the disk),
        oldest first: never a key or its hash."""
        user = self.users.get(username)
        if user is None:
            return None
        keys = sorted([*revoked, *(self.keys[key_id] for key_id in user.key_ids)], key=lambda key: key.created_at)
        return {"username": username, "status": "suspended" if user.suspended else "active",
                "created_at": user.created_at,
                "keys": [{"key_id": key.key_id, "created_at": key.created_at, "last_used_at": key.last_used_at,
                          "revoked_at": key.revoked_at} for key in keys]}

    def to_state(self) -> dict:
        return {"users": [[user.username, user.created_at, user.suspended] for user in self.users.values()],
                "keys": [key.to_record() for key in self.keys.values()]}

    def load_state(self, state: dict) -> None:
        if "keys" not in state:  # a snapshot from before keys had ids: [username, key hash, created_at]
            for username, key_hash, created_at in state["users"]:
                self.apply(UserCreated(username, key_hash, created_at))
            return
        for username, created_at, suspended in state["users"]:
            self.users[username] = User(username, created_at, suspended)
        for record in state["keys"]:
            self._add_key(Key(*record))


class AccessChanges:
    """What gateways must hear of, numbered: `["key", key hash]` (revoked), `["suspended", username]`,
    `["resumed", username]`. In memory only: a new registry process is a new `incarnation`, and
    a gateway that sees one starts again from the whole state."""

    def __init__(self) -> None:
        self.incarnation = secrets.token_hex(8)
        self.epoch = 0
        self._changes: deque[tuple[int, list]] = deque(maxlen=CHANGES_KEPT)
        self._changed = asyncio.Event()

    def add(self, change: list) -> None:
        self.epoch += 1
        self._changes.append((self.epoch, change))
        self._changed.set()
        self._changed = asyncio.Event()

    async def since(self, incarnation: str | None, epoch: int, timeout: float) -> list:
        """Wait up to `timeout` s for changes past `epoch`; answer `[incarnation, epoch, reset, changes]`
        (`reset`: the caller's view is not of this registry, or too old: forget every cached key)."""
        if incarnation != self.incarnation or epoch > self.epoch or (
                epoch < self.epoch and (not self._changes or self._changes[0][0] > epoch + 1)):
            return [self.incarnation, self.epoch, True, []]
        if epoch == self.epoch:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        return [self.incarnation, self.epoch, False,
                [change for number, change in self._changes if number > epoch]]
