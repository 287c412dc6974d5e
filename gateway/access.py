"""This gateway process's cache of API keys, kept true to the registry within a second.

The cache maps a key's hash to its user, for keys this process has seen authenticate; the
direct order path and every dependency read it instead of asking the registry. What may
change a cached answer (a key revoked, a user suspended) reaches every process through the
registry: each change gets an epoch there, and one task per process long-polls
`access_changes` (answered at once when something changed, else after `POLL_SECONDS`),
drops the revoked keys and the suspended users' keys from the cache, and closes the
WebSockets authenticated with them (1008).

The bound on the delay: the cache is trusted only until `TRUST_SECONDS` after the last poll
that answered was *sent* (a poll answers everything the registry did before it answered,
and it answered after it was sent). A revocation the registry journaled at time r is thus
either in an answer this process applied, or the cache stops being trusted before
r + `TRUST_SECONDS`, and every request asks the registry itself until polls answer again.
In the normal case the delay is one Ray round trip (milliseconds).

Key uses are collected here (a set add per request) and sent to the registry every
`TOUCH_SECONDS` for `last_used_at`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import NamedTuple

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
TRUST_SECONDS = 0.9
TOUCH_SECONDS = 2.0
RETRY_SECONDS = 0.1
REVOKED = (1008, "key revoked")
SUSPENDED = (1008, "user suspended")


class KeyOwner(NamedTuple):
    """Who a live key belongs to, as the registry answered at `epoch`."""

    username: str
    key_id: str
    suspended: bool
    epoch: int


class KeyCache:
    """Key hash -> its owner, for live keys of active users; fed and pruned as the module says."""

    def __init__(self, client, on_revoked, on_suspended) -> None:
        self.client = client
        self._owners: dict[str, KeyOwner] = {}
        self._used: set[str] = set()
        self._on_revoked = on_revoked  # (key hash) -> None: close what was authenticated with it
        self._on_suspended = on_suspended  # (username) -> None
        self.incarnation: str | None = None
        self.epoch = 0
        self.trusted_until = 0.0  # time.monotonic()
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._watch()), loop.create_task(self._touch())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except BaseException:  # cancelled, or failed while stopping: nothing to keep
                pass

    def cached(self, key_hash: str) -> str | None:
        """The username of a cached key while the cache is trusted, else None (ask the registry)."""
        if time.monotonic() > self.trusted_until:
            return None
        owner = self._owners.get(key_hash)
        if owner is None:
            return None
        self._used.add(key_hash)
        return owner.username

    async def owner(self, key_hash: str) -> KeyOwner | None:
        """The owner of a live key (suspended or not), from the cache or the registry; None if none."""
        if time.monotonic() <= self.trusted_until:
            owner = self._owners.get(key_hash)
            if owner is not None:
                self._used.add(key_hash)
                return owner
        answer = await self.client.authenticate(key_hash)
        if answer is None:
            return None
        owner = KeyOwner(*answer)
        self._used.add(key_hash)
        # An answer older than changes already applied here might be of a key they revoked.
        if not owner.suspended and owner.epoch >= self.epoch:
            self._owners[key_hash] = owner
        return owner

    def stale(self, owner: KeyOwner) -> bool:
        """Whether changes arrived since `owner` was answered (then ask again)."""
        return owner.epoch < self.epoch

    async def _watch(self) -> None:
        while True:
            sent = time.monotonic()
            try:
                incarnation, epoch, reset, changes = await self.client.access_changes(
                    self.incarnation, self.epoch, POLL_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception:  # the registry restarting: the cache goes untrusted on its own
                log.warning("polling the registry for key changes failed; retrying", exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            try:
                if reset:
                    self._reset(incarnation, epoch)
                else:
                    self._apply(changes, epoch)
            except Exception:  # a listener's bug: start again from nothing cached, keep watching
                log.exception("applying key changes failed; the key cache starts again")
                self._owners.clear()
                self.incarnation = None
                continue
            self.trusted_until = sent + TRUST_SECONDS

    def _apply(self, changes: list, epoch: int) -> None:
        for kind, value in changes:
            if kind == "key":
                self._owners.pop(value, None)
                self._on_revoked(value)
            elif kind == "suspended":
                for key_hash in [key_hash for key_hash, owner in self._owners.items() if owner.username == value]:
                    del self._owners[key_hash]
                self._on_suspended(value)
        self.epoch = epoch

    def _reset(self, incarnation: str, epoch: int) -> None:
        """A new registry, or one too far ahead: forget everything cached, check every socket."""
        first = self.incarnation is None
        self._owners.clear()
        self.incarnation, self.epoch = incarnation, epoch
        if not first:
            log.info("the registry restarted or moved far ahead: key cache cleared")
            self._on_revoked(None)

    async def _touch(self) -> None:
        while True:
            await asyncio.sleep(TOUCH_SECONDS)
            if not self._used:
                continue
            used, self._used = list(self._used), set()
            try:
                await self.client.touch_keys(used, time.time_ns() // 1000)
            except asyncio.CancelledError:
                raise
            except Exception:  # last_used_at is a hint; the next round tries again
                log.info("could not report key uses to the registry", exc_info=True)
