"""History on disk over real Ray and LMDB: lists, filters, pages and totals as API.md says them.

One user's orders, most of them closed (on disk) and some open (in memory), are listed with
every filter and at many offsets, and each page and total is compared with the list computed
from every order fetched one by one; the same after a restart from small snapshots.
"""

from __future__ import annotations

import random

import pytest

from actors.messages import CancelOrder
from tests.actors.service import RunningService, order_request, run, setup_market

pytestmark = pytest.mark.usefixtures("ray_cluster")

USER, OTHER = "alice", "bob00"
FILTERS = [
    {}, {"status": "completed"}, {"status": "cancelled"}, {"status": "confirmed"}, {"order_type": "limit_sell"},
    {"asset_id": "AAA"}, {"asset_id": "BBB", "status": "completed"}, {"order_type": "limit_buy", "asset_id": "AAA"},
]


def expected_page(orders: list, filters: dict, limit: int, offset: int) -> tuple[list[int], int]:
    def keep(view) -> bool:
        return all(getattr(view, name) == value for name, value in filters.items()
                   if name in ("status", "order_type", "asset_id") and value is not None) and \
            (filters.get("start") is None or view.created_at >= filters["start"]) and \
            (filters.get("end") is None or view.created_at <= filters["end"])

    selected = sorted((view for view in orders if keep(view)), key=lambda view: (view.created_at, view.order_id),
                      reverse=True)
    return [view.order_id for view in selected[offset:offset + limit]], len(selected)


def test_order_lists_and_transactions_page_and_count_exactly_across_memory_and_disk(tmp_path):
    rng = random.Random(4)

    async def lists(client, ids: list[int]) -> list:
        orders = [await client.get_order(USER, order_id) for order_id in ids]
        assert all(view is not None for view in orders)
        times = sorted(view.created_at for view in orders)
        windows = [{}, {"start": times[len(times) // 3]}, {"end": times[len(times) // 2]},
                   {"start": times[10], "end": times[-10]}]
        seen = []
        for filters in FILTERS:
            for window in windows:
                full = {"order_type": None, "status": None, "asset_id": None, "start": None, "end": None,
                        **filters, **window}
                for limit, offset in ((50, 0), (7, 3), (25, 40), (100, 150), (10, 10_000)):
                    page = await client.list_orders(USER, full, limit, offset)
                    assert ([view.order_id for view in page.items], page.total_count) == \
                        expected_page(orders, full, limit, offset), (full, limit, offset)
                    assert page.has_more == (offset + len(page.items) < page.total_count)
                    seen.append(page.total_count)
        fills = await client.transactions(USER, "AAA", {}, 1000, 0)
        sells = await client.transactions(USER, "AAA", {"transaction_type": "SELL"}, 1000, 0)
        assert sells.total_count == sum(1 for item in fills.items if item.transaction_type == "SELL")
        assert [item.timestamp for item in fills.items] == sorted((item.timestamp for item in fills.items),
                                                                  reverse=True)
        for limit, offset in ((5, 0), (9, 7), (20, fills.total_count // 2 + 1), (10, fills.total_count - 4)):
            page = await client.transactions(USER, "AAA", {}, limit, offset)
            assert page.items == fills.items[offset:offset + limit] and page.total_count == fills.total_count
        return seen, fills.total_count

    async def scenario():
        service = RunningService(tmp_path, snapshot_every=50)
        client = await service.start()
        await setup_market(client, [USER, OTHER], ["AAA", "BBB"], usd=100_000, lots=10_000)
        ids = []
        for _ in range(240):
            asset_id = rng.choice(["AAA", "BBB"])
            side = rng.choice(["limit_buy", "limit_sell"])
            price = 10_000 + rng.randint(-3, 3)
            # The other side is always there, so most of the user's orders trade and close.
            await client.place_order(order_request(OTHER, asset_id, "limit_sell" if side == "limit_buy"
                                                   else "limit_buy", rng.randint(1, 3), price))
            placed = await client.place_order(order_request(USER, asset_id, side, rng.randint(1, 4), price,
                                                            client_order_id=f"h{len(ids)}"))
            ids.append(placed.order.order_id)
            if rng.random() < 0.15:
                await client.cancel_order(CancelOrder(USER, placed.order.order_id))
        await client.drain()
        before = await lists(client, ids)
        duplicate = await client.place_order(order_request(USER, "AAA", "limit_buy", 1, 9_000, client_order_id="h0"))
        assert duplicate.status == "duplicate" and duplicate.order.order_id == ids[0]
        client = await service.restart()
        after = await lists(client, ids)
        report = await client.audit()
        await service.stop()
        return before, after, report

    before, after, report = run(scenario())
    assert before == after
    assert report["problems"] == []
    assert max(before[0]) == 240 and before[1] > 50


@pytest.mark.parametrize("crash", ["book.after_match", "shard.after_settle"])
def test_a_kill_between_the_steps_of_closing_an_order_leaves_it_findable_exactly_once(tmp_path, crash):
    """Closing an order takes steps in two processes: the book journals the match, then each
    shard journals the settlement and moves the order and its fill to disk in one transaction,
    then the book learns that the shard holds it. A kill after either journal write, before the
    next step, must still leave both orders and both fills listed once, before and after a restart."""
    import ray

    from tests.actors.test_actors import users_on_different_shards

    maker, taker = users_on_different_shards()

    async def check(client, sold_id: int) -> None:
        await client.drain()
        for username, client_order_id in ((maker, "m1"), (taker, "t1")):
            listed = await client.list_orders(username, {}, 50, 0)
            ids = [view.order_id for view in listed.items if view.client_order_id == client_order_id]
            assert len(ids) == 1 and listed.total_count == len(listed.items), (username, listed)
            order = await client.get_order(username, ids[0])
            assert (order.status, order.filled_quantity) == ("completed", 10)
            (fill,) = (await client.transactions(username, "X", {}, 50, 0)).items
            assert (fill.quantity, fill.order_id) == (10, ids[0])
            completed = await client.list_orders(username, {"status": "completed"}, 50, 0)
            assert [view.order_id for view in completed.items] == ids and completed.total_count == 1
        assert ids[0] != sold_id  # the taker's, listed by the loop's last user
        assert (await client.audit())["problems"] == []

    async def scenario():
        service = RunningService(tmp_path)
        client = await service.start()
        await setup_market(client, [maker, taker], ["X"], usd=1_000, lots=100)
        sold = await client.place_order(order_request(maker, "X", "limit_sell", 10, 10_000, client_order_id="m1"))
        assert sold.order.status == "confirmed"
        await service.stop()

        service.reconfigure(crash_points=frozenset({crash}))
        client = await service.start()
        try:
            bought = await client.place_order(order_request(taker, "X", "limit_buy", 10, 10_000,
                                                            client_order_id="t1"))
            assert bought.ok
        except ray.exceptions.RayActorError:
            pass  # the taker's shard died with the answer; it is journaled, as check() shows
        await check(client, sold.order.order_id)
        assert (tmp_path / f"crashed-at-{crash}").exists()
        client = await service.restart()
        await check(client, sold.order.order_id)
        await service.stop()

    run(scenario())
