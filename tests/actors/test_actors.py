"""The actors over real Ray and real LMDB: matching, settlement, concurrency."""

from __future__ import annotations

import asyncio
import random

import pytest

from actors.config import shard_for
from tests.actors.service import (
    USD_UNIT, Acknowledged, RunningService, order_request, random_requests, run, setup_market,
)

pytestmark = pytest.mark.usefixtures("ray_cluster")


def users_on_different_shards(shard_count: int = 2) -> tuple[str, str]:
    names = [f"user{i}" for i in range(50)]
    first = names[0]
    second = next(name for name in names if shard_for(name, shard_count) != shard_for(first, shard_count))
    return first, second


def test_cross_shard_trade_settles_maker_and_taker_exactly(tmp_path):
    maker, taker = users_on_different_shards()

    async def scenario():
        service = RunningService(tmp_path)
        client = await service.start()
        await setup_market(client, [maker, taker], ["X"], usd=1_000, lots=100)
        sold = await client.place_order(order_request(maker, "X", "limit_sell", 10, 10_000))
        assert sold[0] == "ok" and sold[1][12] == "confirmed"
        bought = await client.place_order(order_request(taker, "X", "limit_buy", 4, 10_100))
        assert bought[0] == "ok"
        assert (bought[1][12], bought[1][14], bought[1][15]) == ("completed", 4, 400 * USD_UNIT)

        # The maker's shard hears of the fill through the numbered settlement path.
        await client.drain()
        maker_order = await client.get_order(maker, sold[1][0])
        assert maker_order[12] == "processing" and maker_order[16] == 6
        maker_balances = await client.balances(maker)
        taker_balances = await client.balances(taker)
        assert maker_balances["USD"][:2] == (1_400 * USD_UNIT, 0)
        assert maker_balances["X"][:2] == (90, 6)
        assert taker_balances["USD"][:2] == (600 * USD_UNIT, 0)  # paid 100.00, not its limit 101.00
        assert taker_balances["X"][:2] == (104, 0)
        (sell,), _, _ = await client.transactions(maker, "X", {}, 50, 0)
        (buy,), _, _ = await client.transactions(taker, "X", {}, 50, 0)
        assert (sell[3], sell[4], sell[6]) == ("SELL", 4, 400 * USD_UNIT)
        assert (buy[3], buy[4], buy[6]) == ("BUY", 4, 400 * USD_UNIT)
        assert (await client.audit())["problems"] == []
        await service.stop()

    run(scenario())


def test_concurrent_orders_and_cancels_across_assets_keep_every_invariant(tmp_path):
    rng = random.Random(7)
    users = [f"trader{i}" for i in range(12)]
    assets = ["AAA", "BBB", "CCC"]

    async def scenario():
        service = RunningService(tmp_path)
        client = await service.start()
        await setup_market(client, users, assets, usd=50_000, lots=1_000)
        acknowledged = Acknowledged()

        async def place(request):
            result = await client.place_order(request)
            acknowledged.record(result)
            return result

        async def cancel_some():
            for _ in range(60):
                open_ids = [(o[1], o[0]) for o in acknowledged.orders.values() if o[12] in ("confirmed", "processing")]
                if open_ids:
                    result = await client.cancel_order(*rng.choice(open_ids))
                    acknowledged.record(result)
                await asyncio.sleep(0)

        requests = random_requests(rng, users, assets, 1_500)
        results = await asyncio.gather(*(place(r) for r in requests), cancel_some())
        outcomes = {result[0] for result in results[:-1]}
        assert "ok" in outcomes
        # A batch of one user's orders goes in one call and is answered in order.
        batch = await client.place_orders(users[0], random_requests(rng, [users[0]], assets, 50))
        assert len(batch) == 50 and all(r[0] in ("ok", "rejected", "duplicate") for r in batch)

        report = await client.audit()
        assert report["problems"] == []
        assert report["open_orders"] == report["resting_orders"]
        assert report["totals"] == report["net_deposits"]
        assert await acknowledged.check_against(client) == []
        await service.stop()

    run(scenario())


def test_crash_between_hold_and_match_fails_order_and_releases_hold(tmp_path):
    import ray

    async def scenario():
        service = RunningService(tmp_path, crash_points=frozenset({"shard.after_hold"}))
        client = await service.start()
        await setup_market(client, ["alice"], ["X"], usd=1_000, lots=0)
        with pytest.raises(ray.exceptions.RayActorError):
            await client.place_order(order_request("alice", "X", "limit_buy", 5, 10_000, client_order_id="a1"))
        # Ray restarted the shard; it replayed the hold, fenced its order ids at the
        # book and failed the order that never got there.
        (order,), total, _ = await client.list_orders("alice", {}, 10, 0)
        assert total == 1 and (order[12], order[13]) == ("failed", "recovery_aborted")
        assert (await client.balances("alice"))["USD"][:2] == (1_000 * USD_UNIT, 0)
        retried = await client.place_order(order_request("alice", "X", "limit_buy", 5, 10_000, client_order_id="a1"))
        assert retried[0] == "duplicate" and retried[1][12] == "failed"
        client = await service.restart()
        assert (await client.audit())["problems"] == []
        await service.stop()

    run(scenario())


def test_crash_between_match_and_settlement_still_answers_and_settles(tmp_path):
    maker, taker = users_on_different_shards()

    async def scenario():
        service = RunningService(tmp_path)
        client = await service.start()
        await setup_market(client, [maker, taker], ["X"], usd=1_000, lots=100)
        sold = await client.place_order(order_request(maker, "X", "limit_sell", 10, 10_000))
        assert sold[1][12] == "confirmed"
        await service.stop()

        # The book dies after journaling the match and before any settlement leaves it.
        service.reconfigure(crash_points=frozenset({"book.after_match"}))
        client = await service.start()
        bought = await client.place_order(order_request(taker, "X", "limit_buy", 10, 10_000))
        assert bought[0] == "ok" and bought[1][12] == "completed"
        await client.drain()
        assert (await client.get_order(maker, sold[1][0]))[12] == "completed"
        assert (await client.balances(maker))["USD"][:2] == (2_000 * USD_UNIT, 0)
        assert (await client.balances(taker))["X"][:2] == (110, 0)
        assert (tmp_path / "crashed-at-book.after_match").exists()
        assert (await client.audit())["problems"] == []
        await service.stop()

    run(scenario())
