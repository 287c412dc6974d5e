"""Revoked API keys on disk, in named databases of the registry's LMDB environment.

A key leaves the registry's memory when it is revoked; its record (id, user, hash, times) is
put here in the same write transaction as the `KeyRevoked` record, so the two never disagree.
A registry replaying its journal puts the keys revoked in the replayed tail again (the same
bytes: a put that changes nothing), which also moves here, on the first start, the revoked keys
of a data directory written before they left memory.

- `revoked_keys`: key id -> `[key_id, username, key_hash, created_at, revoked_at, last_used_at]`.
- `revoked_by_user`: username, a 0 byte, created_at (8 bytes, big-endian), key id -> nothing:
  a user's revoked keys in creation order, for the admin's view of the user.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import orjson

from actors.history import user_prefix
from actors.user_keys import Key

TABLES = {"revoked_keys": False, "revoked_by_user": False}

_MICROS = struct.Struct(">Q")

Write = tuple[str, bytes, bytes]


def revoked_key_writes(keys: list[Key]) -> list[Write]:
    writes = []
    for key in keys:
        writes.append(("revoked_keys", key.key_id.encode(), orjson.dumps(key.to_record())))
        by_user = user_prefix(key.username) + _MICROS.pack(key.created_at) + key.key_id.encode()
        writes.append(("revoked_by_user", by_user, b""))
    return writes


class RevokedKeys:
    """Look-ups in the revoked keys on disk; `reading` is the journal's `reading()`."""

    def __init__(self, reading: Callable) -> None:
        self._reading = reading

    def key(self, key_id: str) -> Key | None:
        with self._reading() as cursor:
            found = cursor("revoked_keys")
            if found is None or not found.set_key(key_id.encode()):
                return None
            return Key(*orjson.loads(found.value()))

    def of_user(self, username: str) -> list[Key]:
        """The user's revoked keys, oldest first."""
        prefix = user_prefix(username)
        with self._reading() as cursor:
            index, keys = cursor("revoked_by_user"), cursor("revoked_keys")
            if index is None or not index.set_range(prefix):
                return []
            found = []
            for entry in index.iternext(keys=True, values=False):
                if not entry.startswith(prefix):
                    break
                if keys.set_key(entry[len(prefix) + _MICROS.size:]):
                    found.append(Key(*orjson.loads(keys.value())))
            return found
