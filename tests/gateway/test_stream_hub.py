"""The stream hub's bookkeeping where a socket fills up at the worst moment.

The book actor and the socket are stand-ins here: what is checked is only which
subscriptions the hub holds, which no real socket can be made to hit deterministically
(a queue exactly full when a subscribe is answered).
"""

from __future__ import annotations

import asyncio

import pytest

from actors.messages import MarketPoll, OrderPoll
from engine import AssetSpec
from gateway.stream_connection import MAX_UNSENT, SLOW_CONSUMER, Frame
from gateway.stream_hub import StreamHub


class _Book:
    """Answers the first poll with an empty book, then waits as a quiet book does."""

    def __init__(self) -> None:
        self.polls = 0
        self.release = asyncio.Event()

    async def poll_market(self, asset_id, since, timeout):
        self.polls += 1
        if since is None:
            return MarketPoll("snapshot", 7, [], [], [], [])
        await self.release.wait()
        return MarketPoll("updates", since, [], [], [], [])


class _Runtime:
    def __init__(self) -> None:
        self.client = _Book()
        self.access_listeners: list = []  # the hub listens for revocations and suspensions


class _StalledSocket:
    """A socket whose reader never reads: the first send never completes."""

    def __init__(self) -> None:
        self.closed_with: tuple[int, str] | None = None

    async def send_text(self, text: str) -> None:
        await asyncio.Event().wait()

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


async def _fill(connection) -> None:
    """Leave exactly MAX_UNSENT frames queued behind one the stalled sender holds."""
    connection.push(Frame({"filler": "taken"}))
    while connection.queue:
        await asyncio.sleep(0)
    for number in range(MAX_UNSENT):
        connection.push(Frame({"filler": number}))


@pytest.mark.parametrize("channel", ["trades", "book"])
def test_a_subscribe_answered_into_a_full_queue_closes_the_socket_and_leaves_no_watcher(channel):
    async def scenario():
        runtime = _Runtime()
        hub = StreamHub(runtime)
        spec = AssetSpec.create("HUB", "0.01", "1")
        watcher = hub.connect(_StalledSocket())
        assert await hub.watch_market(watcher, spec, "trades", {"op": "subscribe"})  # keeps the market primed
        connection = hub.connect(_StalledSocket())
        await _fill(connection)
        assert connection.closing is None and len(connection.queue) == MAX_UNSENT

        await hub.watch_market(connection, spec, channel, {"op": "subscribe", "channel": channel})

        assert connection.closing == SLOW_CONSUMER
        market = hub.markets["HUB"]
        assert connection not in market.book_watchers and connection not in market.trade_watchers
        assert connection not in hub.connections
        assert not connection.books and not connection.trades
        hub.unwatch(watcher, "trades", "HUB")
        assert market.idle()  # its poll loop ends when the poll returns
        runtime.client.release.set()
        await asyncio.wait_for(market.task, 5)
        assert hub.stats()["market_subscriptions"] == 0
        await hub.close()
        for each in (watcher, connection):
            await each.finished()

    asyncio.run(scenario())


def test_orders_subscribe_answered_into_a_full_queue_leaves_no_watcher():
    class _Shard:
        async def poll_orders(self, username, since, incarnation, timeout):
            await asyncio.sleep(0)  # a real call always suspends
            return OrderPoll(incarnation="one", sequence=1, gap=False, entries=[])

    async def scenario():
        runtime = _Runtime()
        runtime.client = _Shard()
        hub = StreamHub(runtime)
        connection = hub.connect(_StalledSocket())
        connection.username = "alice"
        await _fill(connection)

        await hub.watch_orders(connection, {"op": "subscribe", "channel": "orders"})

        assert connection.closing == SLOW_CONSUMER
        assert not connection.orders
        user = hub.users.get("alice")
        assert user is None or connection not in user.watchers
        await hub.close()
        await connection.finished()

    asyncio.run(scenario())
