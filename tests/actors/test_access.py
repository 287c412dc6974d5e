"""Keys, suspensions, rate limits and the audit log in the actors: real Ray, real LMDB.

A suspension is journaled by the registry, then by the user's shard, which cancels the open
orders through the books; a crash at either step is finished by the retried call (or by the
registry's announcement at start), never leaving a suspended user with an open order.
"""

from __future__ import annotations

import asyncio

import pytest

from actors.config import ServiceConfig
from actors.registry_actor import RegistryActor
from actors.shard_access import RATE_LIMITED, USER_SUSPENDED, ShardAccess, TokenBuckets
from actors.user_keys import derived_key_id
from tests.actors.service import RunningService, order_request, run, setup_market

ASSET = "SUS"


# ---- token buckets (time passed in) ------------------------------------------------

def test_a_bucket_starts_full_with_twice_the_rate_and_refills_at_the_rate():
    buckets = TokenBuckets(5)
    assert [buckets.take("alice", 100.0) for _ in range(11)] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, None]
    assert buckets.take("bob", 100.0) == 9  # another user's bucket is its own
    assert buckets.take("alice", 100.1) is None  # half a token
    assert buckets.take("alice", 100.2) == 0
    assert buckets.take("alice", 200.0) == 9  # never more than full
    assert buckets.retry_after("alice") == 1


def test_idle_full_buckets_are_forgotten():
    buckets = TokenBuckets(1)
    buckets.take("alice", 0.0)
    buckets.take("bob", 15.0)  # alice's bucket has been full for 13 s: swept
    assert len(buckets) == 1


def test_shard_access_checks_nothing_until_a_suspension_or_a_limit():
    access = ShardAccess(0, 0)
    assert access.order_check is None and access.admit_read("alice") == -1
    access.set_suspended("alice", True)
    assert access.order_check("alice", 0.0) == (USER_SUSPENDED, None)
    assert access.order_check("bob", 0.0) == (None, None)
    access.set_suspended("alice", False)
    assert access.order_check is None
    limited = ShardAccess(0.5, 0)
    assert limited.order_check("carol", 0.0) == (None, 0)
    assert limited.order_check("carol", 0.0) == (RATE_LIMITED, 0)


def test_a_call_is_limited_at_one_instant_so_what_it_refuses_is_its_tail():
    """Regression: with the clock read per order, a batch's pass that took longer than a token's
    refill placed an order after one it had refused (seen on a slow 2-core VM)."""
    limited = ShardAccess(50, 0)  # 100 tokens at most, one every 20 ms
    instant = 1_000.0
    answers = [limited.order_check("dave", instant)[0] for _ in range(100)]
    assert answers == [None] * 100
    # The same call goes on past 20 ms of work: still the call's instant, nothing refilled.
    assert [limited.order_check("dave", instant)[0] for _ in range(5)] == [RATE_LIMITED] * 5
    # The next call, a token's refill later, has one token again.
    assert [limited.order_check("dave", instant + 0.021)[0] for _ in range(2)] == [None, RATE_LIMITED]


# ---- the registry's keys and audit log over its journal ----------------------------

def test_registry_keys_and_audit_log_survive_a_reopen(tmp_path):
    config = ServiceConfig(data_dir=tmp_path, shard_count=1, book_actor_count=1)

    async def first() -> tuple[str, str]:
        registry = RegistryActor(config)
        try:
            assert (await registry.create_user("alice", "hash-a1", 10))[0] is None
            refused, second = await registry.create_key("alice", "hash-a2", 11)
            assert refused is None
            for index in range(8):
                assert (await registry.create_key("alice", f"hash-x{index}", 12))[0] is None
            assert await registry.create_key("alice", "hash-11", 13) == ["TOO_MANY_KEYS", None]
            assert await registry.revoke_key("alice", second, 14) is None
            assert await registry.revoke_key("alice", second, 15) is None  # again: nothing new
            assert await registry.revoke_key("alice", "kmissing", 15) == "KEY_NOT_FOUND"
            refused, username, rotated = await registry.rotate_key("hash-a1", "hash-a3", 16)
            assert (refused, username) == (None, "alice")
            assert await registry.rotate_key("hash-a1", "hash-a4", 17) == ["KEY_NOT_LIVE", None, None]
            assert await registry.authenticate("hash-a1") is None
            assert (await registry.authenticate("hash-a3"))[:3] == ["alice", rotated, False]
            await registry.log_action("admin", "deposit", "alice", {"asset_id": "USD", "amount": "5"}, 18)
            return second, rotated
        finally:
            registry.store.close()

    second, rotated = asyncio.run(first())
    registry = RegistryActor(config)
    try:
        user = asyncio.run(registry.user("alice"))
        assert len(user["keys"]) == 11 and all("hash" not in str(key) for key in user["keys"])
        revoked = [key["key_id"] for key in user["keys"] if key["revoked_at"] is not None]
        assert revoked == [user["keys"][0]["key_id"], second]
        # Revoked keys are on disk, not in memory: rotating keys for ever does not grow the registry.
        assert set(revoked).isdisjoint(registry.user_keys.keys) and len(registry.user_keys.keys) == 9
        assert registry.revoked_keys.key(second).revoked_at == 14
        assert asyncio.run(registry.revoke_key("alice", second, 20)) is None  # still "again: nothing new"
        entries, total = registry.audit_log.page(None, "alice", 100, 0)
        assert total == 14
        assert [entry["action"] for entry in entries[:3]] == ["deposit", "key_rotated", "key_revoked"]
        assert entries[1]["details"] == {"username": "alice", "new_key_id": rotated}
        assert registry.audit_log.page("key_created", None, 3, 2)[1] == 10
        assert [entry["id"] for entry in registry.audit_log.page("key_created", "alice", 2, 8)[0]] == [3, 2]
        assert registry.audit_log.page("user_suspended", None, 10, 0) == ([], 0)
    finally:
        registry.store.close()


def test_a_key_from_before_key_ids_gets_the_same_short_id_every_time():
    assert derived_key_id("abc") == derived_key_id("abc") != derived_key_id("abd")
    assert len(derived_key_id("abc")) <= 16 and "abc" not in derived_key_id("abc")


# ---- suspension across a crash ------------------------------------------------------

@pytest.mark.usefixtures("ray_cluster")
@pytest.mark.parametrize("point", ["registry.after_suspend", "shard.after_suspend"])
def test_a_crash_in_a_suspension_leaves_no_open_order_of_the_user(tmp_path, point):
    async def scenario():
        service = RunningService(tmp_path, crash_points=frozenset({point}))
        client = await service.start()
        await setup_market(client, ["alice", "bob"], [ASSET], usd=1_000, lots=100)
        placed = [await client.place_order(order_request("alice", ASSET, "limit_buy", 2, 100 + index))
                  for index in range(3)]
        placed.append(await client.place_order(order_request("alice", ASSET, "limit_sell", 5, 500)))
        assert all(outcome.ok and outcome.order.status == "confirmed" for outcome in placed)
        refused, user = await client.set_suspended("alice", True, 1)
        assert refused is None and user["status"] == "suspended"
        assert (tmp_path / f"crashed-at-{point}").exists()
        for outcome in placed:
            order = await client.get_order("alice", outcome.order.order_id)
            assert (order.status, order.reason) == ("cancelled", "user_suspended")
        report = await client.audit()
        assert report["problems"] == [] and report["open_orders"] == 0
        balances = await client.balances("alice")
        assert all(balance.held == 0 for balance in balances.values())
        again = await client.place_order(order_request("alice", ASSET, "limit_buy", 1, 100))
        assert again.reason == USER_SUSPENDED
        assert (await client.place_order(order_request("bob", ASSET, "limit_buy", 1, 100))).ok
        client = await service.restart()
        assert (await client.place_order(order_request("alice", ASSET, "limit_buy", 1, 100))).reason == USER_SUSPENDED
        assert (await client.authenticate("hash-alice"))[2] is True
        refused, user = await client.set_suspended("alice", False, 2)
        assert user["status"] == "active"
        assert (await client.place_order(order_request("alice", ASSET, "limit_buy", 1, 100))).ok
        await service.stop()

    run(scenario())


def test_rotating_keys_for_ever_keeps_only_the_live_ones_in_memory_and_lists_them_all(tmp_path):
    config = ServiceConfig(data_dir=tmp_path, shard_count=1, book_actor_count=1)

    async def rotate(registry: RegistryActor, times: int) -> None:
        for index in range(times):
            assert (await registry.rotate_key(f"hash-{index}", f"hash-{index + 1}", 100 + index))[0] is None

    registry = RegistryActor(config)
    try:
        assert asyncio.run(registry.create_user("alice", "hash-0", 10))[0] is None
        asyncio.run(rotate(registry, 50))
        assert len(registry.user_keys.keys) == 1 and registry.user_keys.revoked == []
        assert len(registry._snapshot_state()["keys"]) == 1
        keys = asyncio.run(registry.user("alice"))["keys"]
        assert len(keys) == 51 and [key["revoked_at"] is None for key in keys] == [False] * 50 + [True]
        assert [key["created_at"] for key in keys] == [10, *range(100, 150)]
    finally:
        registry.store.close()
    registry = RegistryActor(config)  # replayed: the same, from the journal and the disk
    try:
        assert len(registry.user_keys.keys) == 1
        assert len(asyncio.run(registry.user("alice"))["keys"]) == 51
    finally:
        registry.store.close()


def test_revoked_keys_in_a_snapshot_from_before_move_to_disk_on_the_first_start(tmp_path):
    config = ServiceConfig(data_dir=tmp_path, shard_count=1, book_actor_count=1)
    registry = RegistryActor(config)
    try:
        assert asyncio.run(registry.create_user("alice", "hash-a", 10))[0] is None
        state = registry._snapshot_state()
        # As the code before kept it: a revoked key among the live ones in the snapshot.
        state["keys"].insert(0, ["kold0000000", "alice", "hash-old", 5, 7, 6])
        registry.store.journal.write_snapshot(registry.store.journal.last_sequence(), state)
    finally:
        registry.store.close()
    registry = RegistryActor(config)
    try:
        assert "kold0000000" not in registry.user_keys.keys
        assert registry.revoked_keys.key("kold0000000").revoked_at == 7
        keys = asyncio.run(registry.user("alice"))["keys"]
        assert [(key["key_id"], key["revoked_at"]) for key in keys][0] == ("kold0000000", 7)
        assert asyncio.run(registry.authenticate("hash-old")) is None
    finally:
        registry.store.close()
