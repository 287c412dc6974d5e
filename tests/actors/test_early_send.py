"""An order sent to its book while its hold is journaled (issue 12), and the crash between the
two commits: the book kept the order, the shard lost its hold."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
import ray

from actors.config import ServiceConfig, make_order_id
from actors.messages import PlaceOrder, SettlementBatch
from actors.offline import verify
from actors.shard_actor import AccountShardActor
from engine import AssetSpec, TradeExecuted, encode_event
from tests.actors.service import USD_UNIT, RunningService, order_request, run, setup_market
from tests.actors.test_actors import users_on_different_shards

pytestmark = pytest.mark.usefixtures("ray_cluster")

CRASH = "shard.early_hold_unwritten"


def test_a_hold_lost_after_the_book_kept_its_order_comes_back_with_the_orders_fills(tmp_path):
    maker, taker = users_on_different_shards()

    async def scenario():
        service = RunningService(tmp_path, crash_points=frozenset({CRASH}))
        client = await service.start()
        await setup_market(client, [maker, taker], ["X"], usd=1_000, lots=100)
        sold = await client.place_order(order_request(maker, "X", "limit_sell", 10, 10_000))
        # A shard's first order reserves ids and waits for its commit; the next ones go early.
        resting = await client.place_order(order_request(taker, "X", "limit_buy", 1, 9_000))
        assert sold.order.status == resting.order.status == "confirmed"
        assert not (tmp_path / f"crashed-at-{CRASH}").exists()

        # The book matches and journals the order with its hold; the taker's shard dies before
        # its own commit of the hold, and the caller hears of the crash, not of the order.
        with pytest.raises(ray.exceptions.RayActorError):
            await client.place_order(order_request(taker, "X", "limit_buy", 4, 10_100, client_order_id="t2"))
        assert (tmp_path / f"crashed-at-{CRASH}").exists()

        # Ray restarted the shard: the hold came back from the book's record, with the fill.
        listed = await client.list_orders(taker, {}, 10, 0)
        bought = next(order for order in listed.items if order.client_order_id == "t2")
        assert listed.total_count == 2
        assert (bought.status, bought.filled_quantity, bought.total_amount) == ("completed", 4, 400 * USD_UNIT)
        again = await client.place_order(order_request(taker, "X", "limit_buy", 4, 10_100, client_order_id="t2"))
        assert again.status == "duplicate" and again.order.order_id == bought.order_id
        await client.drain()
        taker_usd, taker_x = (await client.balances(taker))["USD"], (await client.balances(taker))["X"]
        assert (taker_usd.available, taker_usd.held) == ((1_000 - 90 - 400) * USD_UNIT, 90 * USD_UNIT)
        assert (taker_x.available, taker_x.held) == (104, 0)
        maker_usd = (await client.balances(maker))["USD"]
        assert (maker_usd.available, maker_usd.held) == (1_400 * USD_UNIT, 0)
        assert (await client.get_order(maker, sold.order.order_id)).filled_quantity == 4

        # Ids go on above every id the crashed shard may have sent: a new order is not fenced.
        later = await client.place_order(order_request(taker, "X", "limit_buy", 2, 10_000))
        assert later.order.order_id > bought.order_id and later.order.status == "completed"
        report = await client.audit()
        assert report["problems"] == [] and report["totals"] == report["net_deposits"]

        # The shard's journal replays the rebuilt hold the same way.
        client = await service.restart()
        bought_again = await client.get_order(taker, bought.order_id)
        assert (bought_again.status, bought_again.filled_quantity) == ("completed", 4)
        report = await client.audit()
        assert report["problems"] == [] and report["open_orders"] == report["resting_orders"]
        await service.stop()

    run(scenario())
    report = verify(tmp_path)
    assert report["problems"] == [] and report["totals"] == report["net_deposits"]
    assert report["aborted_orders"] == []


def test_an_order_goes_early_only_when_nothing_it_may_be_paid_from_is_in_memory_alone(tmp_path):
    """The rule of `_may_send_early`, on a shard object of its own (no Ray: nothing here calls out)."""
    shard = AccountShardActor(ServiceConfig(data_dir=tmp_path, shard_count=1, book_actor_count=1), 0)
    shard.accounts.list_asset(AssetSpec.create("X", "0.01", "1"))

    def order(username):
        return [PlaceOrder(username, "X", "limit_buy", "gtc", False, 1, 100, None, None)]

    first = [(0, make_order_id(shard.next_sequence, 0), None)]
    books = {0: []}

    async def scenario():
        assert not shard._may_send_early(order("carol"), first, books)  # no ids reserved yet
        shard._reserve_ids()
        assert shard._may_send_early(order("carol"), first, books)
        # A fill credits both sides in memory at once; until this shard journals it, a crash would
        # leave only the book's copy, which a recovery may apply after an order it paid for.
        trade = TradeExecuted(1, 100, 1, "buy", 11, "alice", 12, "bob", 5)
        durable = shard._apply_now([SettlementBatch("X", 1, [encode_event(trade)])])
        assert not shard._may_send_early(order("alice"), first, books)
        assert not shard._may_send_early(order("bob"), first, books)
        assert shard._may_send_early(order("carol"), first, books)
        await durable
        assert shard._may_send_early(order("alice"), first, books) and shard._crediting == {}
        shard._unsent += 1  # a held order waits for its commit before it is sent: none may overtake it
        assert not shard._may_send_early(order("carol"), first, books)
        shard._unsent -= 1
        past = [(0, shard.ids_reserved + (1 << 8), None)]
        assert not shard._may_send_early(order("carol"), past, books)
        shard.config = replace(shard.config, early_send=False)  # ORDER_SERVICE_EARLY_SEND=false
        assert not shard._may_send_early(order("carol"), first, books)

    try:
        asyncio.run(scenario())
    finally:
        shard.store.close()
