"""The gateway's key cache where timing decides (gateway/access.py), and the admin token's check.

The registry is a stand-in answering as the real one does (`authenticate`, `access_changes`):
what is checked is which answers the cache keeps, which a real service cannot be made to
interleave deterministically (a registry answer that was sent before a revocation the
cache has already applied).
"""

from __future__ import annotations

import asyncio
import hmac

from gateway import deps
from gateway.access import KeyCache


class _Registry:
    def __init__(self) -> None:
        self.owners: dict[str, list] = {}
        self.changes: asyncio.Queue = asyncio.Queue()
        self.asked = 0

    async def authenticate(self, key_hash):
        self.asked += 1
        return self.owners.get(key_hash)

    async def access_changes(self, incarnation, epoch, timeout):
        return await self.changes.get()

    async def touch_keys(self, hashes, timestamp):
        return None


async def _settled() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_an_answer_older_than_an_applied_revocation_is_not_cached():
    async def scenario():
        registry = _Registry()
        revoked, suspended = [], []
        cache = KeyCache(registry, revoked.append, suspended.append)
        cache.start()
        await registry.changes.put(["one", 0, True, []])
        await _settled()
        assert cache.cached("h1") is None  # trusted, but not known yet
        registry.owners["h1"] = ["alice", "k1", False, 0]
        assert (await cache.owner("h1")).username == "alice"
        assert cache.cached("h1") == "alice"  # cached: the direct path serves it
        await registry.changes.put(["one", 1, False, [["key", "h1"]]])
        await _settled()
        assert cache.cached("h1") is None and revoked == ["h1"]
        # An answer the registry sent before that revocation arrives late: used once, never cached.
        registry.owners["h2"] = ["bob", "k2", False, 0]
        owner = await cache.owner("h2")
        assert cache.stale(owner) and cache.cached("h2") is None
        registry.owners["h2"] = ["bob", "k2", False, 1]
        assert not cache.stale(await cache.owner("h2")) and cache.cached("h2") == "bob"
        await registry.changes.put(["one", 2, False, [["suspended", "bob"]]])
        await _settled()
        assert cache.cached("h2") is None and suspended == ["bob"]
        registry.owners["h2"] = ["bob", "k2", True, 2]
        assert (await cache.owner("h2")).suspended and cache.cached("h2") is None  # never cached
        # A new registry process: everything cached is forgotten, every socket checked again.
        registry.owners["h3"] = ["carol", "k3", False, 2]
        await cache.owner("h3")
        await registry.changes.put(["two", 0, True, []])
        await _settled()
        assert cache.cached("h3") is None and revoked == ["h1", None]
        await cache.stop()

    asyncio.run(scenario())


def test_the_cache_is_not_trusted_before_a_poll_answered():
    async def scenario():
        registry = _Registry()
        registry.owners["h1"] = ["alice", "k1", False, 0]
        cache = KeyCache(registry, lambda key_hash: None, lambda username: None)
        await cache.owner("h1")
        await cache.owner("h1")
        assert registry.asked == 2 and cache.cached("h1") is None

    asyncio.run(scenario())


def test_the_admin_token_is_compared_in_constant_time(monkeypatch):
    compared = []
    constant_time = hmac.compare_digest

    def spy(left, right):
        compared.append((left, right))
        return constant_time(left, right)

    monkeypatch.setattr(deps.hmac, "compare_digest", spy)

    class _Runtime:
        admin_token = "s3cret-token"

    assert deps._is_admin(_Runtime(), "s3cret-token") is True
    assert deps._is_admin(_Runtime(), "s3cret-tokeN") is False
    assert deps._is_admin(_Runtime(), "ünïcode") is False
    assert compared and all(isinstance(left, bytes) for left, _ in compared)
