"""The actors over real Ray and real LMDB: matching, settlement, concurrency."""

from __future__ import annotations

import asyncio
import random

import pytest

from actors.config import shard_for
from actors.messages import CancelOrder
from tests.actors.service import (
    USD_UNIT, Acknowledged, RunningService, order_request, random_requests, run, setup_market,
)

pytestmark = pytest.mark.usefixtures("ray_cluster")


def users_on_different_shards(shard_count: int = 2) -> tuple[str, str]:
    first, *others = [f"user{i}" for i in range(50)]
    second = next(name for name in others if shard_for(name, shard_count) != shard_for(first, shard_count))
    return first, second


def test_cross_shard_trade_settles_maker_and_taker_exactly(tmp_path):
    maker, taker = users_on_different_shards()

    async def scenario():
        service = RunningService(tmp_path)
        client = await service.start()
        await setup_market(client, [maker, taker], ["X"], usd=1_000, lots=100)
        sold = await client.place_order(order_request(maker, "X", "limit_sell", 10, 10_000))
        assert sold.ok and sold.order.status == "confirmed"
        bought = await client.place_order(order_request(taker, "X", "limit_buy", 4, 10_100))
        assert bought.ok
        assert (bought.order.status, bought.order.filled_quantity, bought.order.total_amount) == (
            "completed", 4, 400 * USD_UNIT)

        # The maker's shard hears of the fill through the numbered settlement path.
        await client.drain()
        maker_order = await client.get_order(maker, sold.order.order_id)
        assert maker_order.status == "processing" and maker_order.reserved == 6
        maker_balances = await client.balances(maker)
        taker_balances = await client.balances(taker)
        assert (maker_balances["USD"].available, maker_balances["USD"].held) == (1_400 * USD_UNIT, 0)
        assert (maker_balances["X"].available, maker_balances["X"].held) == (90, 6)
        # Paid 100.00, not its limit 101.00.
        assert (taker_balances["USD"].available, taker_balances["USD"].held) == (600 * USD_UNIT, 0)
        assert (taker_balances["X"].available, taker_balances["X"].held) == (104, 0)
        (sell,) = (await client.transactions(maker, "X", {}, 50, 0)).items
        (buy,) = (await client.transactions(taker, "X", {}, 50, 0)).items
        assert (sell.transaction_type, sell.quantity, sell.total_amount) == ("SELL", 4, 400 * USD_UNIT)
        assert (buy.transaction_type, buy.quantity, buy.total_amount) == ("BUY", 4, 400 * USD_UNIT)
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
                open_ids = [CancelOrder(order.username, order.order_id) for order in acknowledged.orders.values()
                            if order.status in ("confirmed", "processing")]
                if open_ids:
                    result = await client.cancel_order(rng.choice(open_ids))
                    acknowledged.record(result)
                await asyncio.sleep(0)

        requests = random_requests(rng, users, assets, 1_500)
        results = await asyncio.gather(*(place(r) for r in requests), cancel_some())
        outcomes = {result.status for result in results[:-1]}
        assert "ok" in outcomes
        # A batch of one user's orders goes in one call and is answered in order.
        trader, *_ = users
        batch = await client.place_orders(trader, random_requests(rng, [trader], assets, 50))
        assert len(batch) == 50 and all(r.status in ("ok", "rejected", "duplicate") for r in batch)

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
        listed = await client.list_orders("alice", {}, 10, 0)
        (order,) = listed.items
        assert listed.total_count == 1 and (order.status, order.reason) == ("failed", "recovery_aborted")
        usd = (await client.balances("alice"))["USD"]
        assert (usd.available, usd.held) == (1_000 * USD_UNIT, 0)
        retried = await client.place_order(order_request("alice", "X", "limit_buy", 5, 10_000, client_order_id="a1"))
        assert retried.status == "duplicate" and retried.order.status == "failed"
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
        assert sold.order.status == "confirmed"
        await service.stop()

        # The book dies after journaling the match and before any settlement leaves it.
        service.reconfigure(crash_points=frozenset({"book.after_match"}))
        client = await service.start()
        bought = await client.place_order(order_request(taker, "X", "limit_buy", 10, 10_000))
        assert bought.ok and bought.order.status == "completed"
        await client.drain()
        assert (await client.get_order(maker, sold.order.order_id)).status == "completed"
        maker_usd, taker_x = (await client.balances(maker))["USD"], (await client.balances(taker))["X"]
        assert (maker_usd.available, maker_usd.held) == (2_000 * USD_UNIT, 0)
        assert (taker_x.available, taker_x.held) == (110, 0)
        assert (tmp_path / "crashed-at-book.after_match").exists()
        assert (await client.audit())["problems"] == []
        await service.stop()

    run(scenario())
