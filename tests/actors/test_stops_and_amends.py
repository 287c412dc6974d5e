"""Stops, amends and cancel-all through the actors, over real Ray and LMDB, with crashes."""

from __future__ import annotations

import pytest

from actors.messages import AmendOrder, PlaceOrder
from tests.actors.service import USD_UNIT, RunningService, order_request, run, setup_market
from tests.actors.test_actors import users_on_different_shards

pytestmark = pytest.mark.usefixtures("ray_cluster")


def stop_request(username, order_type, quantity, stop_price, stop_kind, price=None, time_in_force=None):
    if time_in_force is None:
        time_in_force = "ioc" if order_type.startswith("market") else "gtc"
    return PlaceOrder(username, "X", order_type, time_in_force, False, quantity, price, None, None,
                      stop_price, stop_kind)


async def trade_at(client, seller, buyer, price, quantity=1):
    """Make one trade at `price` between two users."""
    assert (await client.place_order(order_request(seller, "X", "limit_sell", quantity, price))).ok
    bought = await client.place_order(order_request(buyer, "X", "limit_buy", quantity, price))
    assert bought.order.status == "completed"


def test_stop_waits_holding_funds_triggers_once_and_settles(tmp_path):
    alice, bob = users_on_different_shards()

    async def scenario():
        service = RunningService(tmp_path)
        client = await service.start()
        await setup_market(client, [alice, bob], ["X"], usd=10_000, lots=100)
        await trade_at(client, alice, bob, 10_000)
        stop = await client.place_order(stop_request(alice, "limit_sell", 5, 9_900, "stop_loss", price=9_800))
        assert (stop.order.status, stop.order.stop_waiting, stop.order.reserved) == ("pending", True, 5)
        assert (await client.balances(alice))["X"].held == 5
        # A bid at 9,800 for the stop to meet once triggered; then a trade at 9,900 triggers it.
        assert (await client.place_order(order_request(bob, "X", "limit_buy", 10, 9_800))).ok
        await trade_at(client, alice, bob, 9_900)
        await client.drain()
        now = await client.get_order(alice, stop.order.order_id)
        assert (now.status, now.filled_quantity, now.stop_waiting) == ("completed", 5, False)
        assert now.triggered_at is not None and now.reserved == 0
        report = await client.audit()
        assert report["problems"] == [] and report.get("waiting_stops", 0) == 0
        await service.stop()

    run(scenario())


def test_cancel_all_cancels_open_orders_and_waiting_stops_of_one_asset_or_all(tmp_path):
    alice, bob = users_on_different_shards()

    async def scenario():
        service = RunningService(tmp_path)
        client = await service.start()
        await setup_market(client, [alice, bob], ["X", "Y"], usd=10_000, lots=100)
        placed = [await client.place_order(order_request(alice, "X", "limit_buy", 1, 9_000 + i)) for i in range(3)]
        placed.append(await client.place_order(stop_request(alice, "limit_buy", 2, 11_000, "stop_loss", 11_100)))
        other = await client.place_order(order_request(alice, "Y", "limit_sell", 3, 12_000))
        assert all(result.ok for result in placed + [other])
        cancelled = await client.cancel_all(alice, "X")
        assert sorted(view.order_id for view in cancelled) == sorted(result.order.order_id for result in placed)
        assert all((view.status, view.reason) == ("cancelled", "user_cancelled") for view in cancelled)
        assert (await client.balances(alice))["USD"].held == 0
        assert [view.order_id for view in await client.cancel_all(alice, None)] == [other.order.order_id]
        assert await client.cancel_all(alice, None) == []
        assert (await client.balances(alice))["Y"].held == 0
        assert (await client.audit())["problems"] == []
        await service.stop()

    run(scenario())


def test_amend_shrinks_in_place_moves_with_resized_hold_and_refuses_without_change(tmp_path):
    alice, bob = users_on_different_shards()

    async def scenario():
        service = RunningService(tmp_path)
        client = await service.start()
        await setup_market(client, [alice, bob], ["X"], usd=1_000, lots=100)
        buy = (await client.place_order(order_request(alice, "X", "limit_buy", 10, 5_000))).order  # 500 USD held
        shrunk = await client.amend_order(AmendOrder(alice, buy.order_id, 6, None))
        assert shrunk.ok and (shrunk.order.quantity, shrunk.order.reserved) == (6, 300 * USD_UNIT)
        moved = await client.amend_order(AmendOrder(alice, buy.order_id, None, 10_000))  # 600 USD: 300 more
        assert moved.ok and (moved.order.price, moved.order.reserved) == (10_000, 600 * USD_UNIT)
        too_dear = await client.amend_order(AmendOrder(alice, buy.order_id, None, 20_000))  # 1,200: not there
        assert (too_dear.status, too_dear.reason) == ("rejected", "INSUFFICIENT_BALANCE")
        for quantity in (7, 0, 6):  # above, at or below filled (0), the same: nothing to change
            refused = await client.amend_order(AmendOrder(alice, buy.order_id, quantity, None))
            assert refused.reason == "INVALID_AMEND", quantity
        assert (await client.amend_order(AmendOrder(bob, buy.order_id, 5, None))).reason == "ORDER_NOT_FOUND"
        balances = await client.balances(alice)
        assert (balances["USD"].held, balances["USD"].available) == (600 * USD_UNIT, 400 * USD_UNIT)
        # Bob's ask at 99.00; alice moves up to 100.00 and crosses: she buys at 99.00 at once.
        assert (await client.place_order(order_request(bob, "X", "limit_sell", 4, 9_900))).ok
        crossed = await client.amend_order(AmendOrder(alice, buy.order_id, None, 10_000 + 0))
        assert crossed.reason == "INVALID_AMEND"  # the same price: nothing changes
        crossed = await client.amend_order(AmendOrder(alice, buy.order_id, 5, 9_950))
        assert crossed.ok and (crossed.order.filled_quantity, crossed.order.status) == (4, "processing")
        assert crossed.order.reserved == 9_950 * 1 * USD_UNIT // 100
        post_only = (await client.place_order(order_request(bob, "X", "limit_sell", 1, 10_500, post_only=True))).order
        refused = await client.amend_order(AmendOrder(bob, post_only.order_id, None, 9_950))
        assert refused.reason == "POST_ONLY_WOULD_MATCH"
        assert (await client.get_order(bob, post_only.order_id)).price == 10_500
        assert (await client.audit())["problems"] == []
        await service.stop()

    run(scenario())


def test_amend_crash_before_its_book_gives_the_extra_hold_back_and_nothing_changes(tmp_path):
    alice, _ = users_on_different_shards()

    async def scenario():
        service = RunningService(tmp_path, crash_points=frozenset({"shard.after_amend_hold"}))
        client = await service.start()
        await setup_market(client, [alice], ["X"], usd=1_000, lots=0)
        buy = (await client.place_order(order_request(alice, "X", "limit_buy", 10, 5_000))).order
        with pytest.raises(Exception):
            await client.amend_order(AmendOrder(alice, buy.order_id, None, 8_000))  # dies holding 300 more
        client = await service.restart()
        now = await client.get_order(alice, buy.order_id)
        assert (now.price, now.quantity, now.reserved) == (5_000, 10, 500 * USD_UNIT)
        assert (await client.balances(alice))["USD"].held == 500 * USD_UNIT
        assert (await client.audit())["problems"] == []
        # The id the amend took is fenced at the book; the next one goes through.
        assert (await client.amend_order(AmendOrder(alice, buy.order_id, None, 8_000))).ok
        await service.stop()

    run(scenario())


def test_stops_survive_kill_and_a_trigger_in_the_replayed_tail_counts_once(tmp_path):
    alice, bob = users_on_different_shards()

    async def scenario():
        service = RunningService(tmp_path)
        client = await service.start()
        await setup_market(client, [alice, bob], ["X"], usd=10_000, lots=100)
        await trade_at(client, alice, bob, 10_000)
        first = (await client.place_order(stop_request(alice, "market_sell", 2, 9_900, "stop_loss"))).order
        second = (await client.place_order(stop_request(alice, "limit_sell", 3, 9_800, "stop_loss", 9_000))).order
        await service.stop()  # kill -9 of every actor
        client = await service.start()
        assert (await client.get_order(alice, first.order_id)).stop_waiting
        # The trade that triggers both stops, then every actor killed before anything else:
        # recovery replays the trade and the cascade from the book's journal, once.
        assert (await client.place_order(order_request(bob, "X", "limit_buy", 10, 9_000))).ok
        service.reconfigure(crash_points=frozenset({"book.after_match"}))
        client = await service.restart()
        try:  # the book dies once it has journaled the trade and its cascade; the shard's call is retried
            await client.place_order(order_request(alice, "X", "limit_sell", 1, 9_000))
        except Exception:
            pass
        assert (tmp_path / "crashed-at-book.after_match").exists()
        client = await service.restart()
        await client.drain()
        orders = [await client.get_order(alice, order.order_id) for order in (first, second)]
        assert [(o.status, o.filled_quantity) for o in orders] == [("completed", 2), ("completed", 3)]
        fills = (await client.transactions(bob, "X", {}, 50, 0)).items
        assert sorted(item.quantity for item in fills if item.timestamp >= orders[0].triggered_at) == [1, 2, 3]
        report = await client.audit()
        assert report["problems"] == [] and report.get("waiting_stops", 0) == 0
        await service.stop()

    run(scenario())
