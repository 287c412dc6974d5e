"""Recovery over real Ray and LMDB: kill everything, or one actor, while orders flow."""

from __future__ import annotations

import asyncio
import os
import random
import signal

import pytest

from actors.config import book_actor_for
from tests.actors.service import Acknowledged, RunningService, random_requests, run, setup_market

pytestmark = pytest.mark.usefixtures("ray_cluster")

USERS = [f"trader{i}" for i in range(10)]
ASSETS = ["AAA", "BBB"]


async def load(client, rng, acknowledged: Acknowledged, count: int, stop_after: int | None = None,
               stopped: asyncio.Event | None = None) -> int:
    """Send `count` orders concurrently; set `stopped` once `stop_after` have been acknowledged."""
    failures = 0

    async def place(request):
        nonlocal failures
        try:
            result = await client.place_order(request)
        except Exception:  # the actor died under it: the outcome is unknown, not acknowledged
            failures += 1
            return
        acknowledged.record(result)
        if stopped is not None and len(acknowledged.orders) >= stop_after:
            stopped.set()

    await asyncio.gather(*(place(r) for r in random_requests(rng, USERS, ASSETS, count)))
    return failures


def test_full_stop_at_random_moments_loses_no_acknowledged_order(tmp_path):
    rng = random.Random(11)

    async def scenario():
        service = RunningService(tmp_path)
        client = await service.start()
        await setup_market(client, USERS, ASSETS, usd=50_000, lots=1_000)
        acknowledged = Acknowledged()
        for cycle in range(3):
            stopped = asyncio.Event()
            target = len(acknowledged.orders) + rng.randint(20, 200)
            flow = asyncio.ensure_future(load(client, rng, acknowledged, 400, target, stopped))
            await asyncio.wait([flow, asyncio.ensure_future(stopped.wait())], return_when=asyncio.FIRST_COMPLETED)
            await service.stop()  # every actor killed at once, mid-flow
            await flow
            client = await service.start()
            assert await acknowledged.check_against(client) == [], f"cycle {cycle}"
            report = await client.audit()
            assert report["problems"] == [], f"cycle {cycle}"
            assert report["totals"] == report["net_deposits"]
        await service.stop()

    run(scenario())


@pytest.mark.parametrize("victim", ["shard-0", "book-0", "registry"])
def test_killing_one_actor_mid_load_recovers_with_invariants_intact(tmp_path, victim):
    rng = random.Random(hash(victim) % 1000)

    async def scenario():
        service = RunningService(tmp_path)
        client = await service.start()
        await setup_market(client, USERS, ASSETS, usd=50_000, lots=1_000)
        acknowledged = Acknowledged()
        stopped = asyncio.Event()
        flow = asyncio.ensure_future(load(client, rng, acknowledged, 600, 100, stopped))
        await stopped.wait()
        pid = (await service.pids())[victim]
        os.kill(pid, signal.SIGKILL)
        await flow
        # Ray restarts the actor from its journal; the service goes on serving.
        await load(client, rng, acknowledged, 200)
        new_pid = (await service.pids())[victim]
        assert new_pid != pid
        assert await acknowledged.check_against(client) == []
        report = await client.audit()
        assert report["problems"] == []
        assert report["open_orders"] == report["resting_orders"]
        await service.stop()

    run(scenario())


def test_restart_from_snapshots_and_later_events_rebuilds_the_same_state(tmp_path):
    from journal import LmdbJournal

    rng = random.Random(5)

    async def scenario():
        service = RunningService(tmp_path, snapshot_every=5)
        client = await service.start()
        await setup_market(client, USERS, ASSETS, usd=50_000, lots=1_000)
        acknowledged = Acknowledged()
        await load(client, rng, acknowledged, 300)
        before = await client.audit()
        balances_before = {user: await client.balances(user) for user in USERS}
        await service.stop()
        books = {f"book-{book_actor_for(asset_id, service.config.book_actor_count)}" for asset_id in ASSETS}
        for stream in ["shard-0", "shard-1", *books]:
            with LmdbJournal(service.config.journal_path(stream)) as journal:
                assert journal.load_snapshot() is not None, stream
        client = await service.start()
        after = await client.audit()
        assert after["problems"] == []
        assert (after["totals"], after["open_orders"]) == (before["totals"], before["open_orders"])
        assert {user: await client.balances(user) for user in USERS} == balances_before
        assert await acknowledged.check_against(client) == []
        await service.stop()

    run(scenario())
