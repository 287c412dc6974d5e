"""The audit log on disk: every admin action and key rotation, paged newest first.

Entries live in named databases of the registry's LMDB environment, written in the same
write transaction as the `AuditLogged` journal record that carries them (and as the records
of the action itself), so the log and the journal never disagree and nothing of the log is
held in memory but the next id.

- `audit`: entry id (u64, big-endian) -> the entry as JSON. Ids run 1, 2, 3... without gaps,
  so an unfiltered page is a range of ids and its total the last id.
- `audit_index` (sorted duplicates): `A` + action, `U` + username + 0, and `B` + username + 0
  + action, each -> the ids of the entries it selects (big-endian, so in id order); LMDB
  counts a key's duplicates itself, so a filtered total costs one look-up. An entry is
  indexed under its actor, its target and the user a key belongs to (`details.username`):
  `username=` finds what a user did and what was done to the user and to the user's keys.

An entry never holds a key, a token or a hash: only usernames, key ids, asset ids, amounts.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import orjson

from actors.records import AuditLogged

TABLES = {"audit": False, "audit_index": True}
ACTIONS = ("user_created", "key_created", "key_revoked", "key_rotated", "user_suspended", "user_resumed",
           "asset_created", "deposit", "withdrawal")

_U64 = struct.Struct(">Q")
Write = tuple[str, bytes, bytes]


def entry_writes(entry: AuditLogged) -> list[Write]:
    """The table puts of one entry: the entry and its index keys."""
    packed = _U64.pack(entry.entry_id)
    writes = [("audit", packed, orjson.dumps(entry_body(entry))),
              ("audit_index", b"A" + entry.action.encode(), packed)]
    for username in _subjects(entry):
        user = username.encode() + b"\0"
        writes.append(("audit_index", b"U" + user, packed))
        writes.append(("audit_index", b"B" + user + entry.action.encode(), packed))
    return writes


def entry_body(entry: AuditLogged) -> dict:
    return {"id": entry.entry_id, "timestamp": entry.timestamp, "actor": entry.actor, "action": entry.action,
            "target": entry.target, "details": entry.details}


def _subjects(entry: AuditLogged) -> list[str]:
    subjects = [entry.actor, entry.target]
    owner = entry.details.get("username")
    if isinstance(owner, str):
        subjects.append(owner)
    return list(dict.fromkeys(subjects))


class AuditLog:
    """The registry's audit log: numbers entries, and pages them from disk."""

    def __init__(self, reading: Callable) -> None:
        self._reading = reading  # LmdbJournal.reading
        self.last_id = 0

    def entry(self, timestamp: int, actor: str, action: str, target: str, details: dict) -> AuditLogged:
        """The next entry (not yet journaled: the caller journals it with `entry_writes`)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        self.last_id += 1
        return AuditLogged(self.last_id, timestamp, actor, action, target, details)

    def replayed(self, entry: AuditLogged) -> None:
        self.last_id = max(self.last_id, entry.entry_id)

    def page(self, action: str | None, username: str | None, limit: int, offset: int) -> tuple[list[dict], int]:
        """Entries newest first, filtered by action and by user (actor, target or key owner);
        return (entries, total)."""
        with self._reading() as cursor_of:
            entries_cursor = cursor_of("audit")
            if entries_cursor is None:  # an offline reader of a directory from before the log
                return [], 0
            if action is None and username is None:
                total = self.last_id
                ids = range(total - offset, max(total - offset - limit, 0), -1)
            else:
                ids, total = self._indexed(cursor_of("audit_index"), action, username, limit, offset)
            entries = []
            for entry_id in ids:
                value = entries_cursor.get(_U64.pack(entry_id))
                if value is not None:
                    entries.append(orjson.loads(value))
            return entries, total

    @staticmethod
    def _indexed(cursor, action: str | None, username: str | None, limit: int,
                 offset: int) -> tuple[list[int], int]:
        if username is None:
            key = b"A" + action.encode()
        elif action is None:
            key = b"U" + username.encode() + b"\0"
        else:
            key = b"B" + username.encode() + b"\0" + action.encode()
        if not cursor.set_key(key):
            return [], 0
        total = cursor.count()
        if offset >= total:
            return [], total
        cursor.last_dup()
        for _ in range(offset):
            cursor.prev_dup()
        ids = []
        while len(ids) < limit:
            ids.append(_U64.unpack(cursor.value())[0])
            if not cursor.prev_dup():
                break
        return ids, total
