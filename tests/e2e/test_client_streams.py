"""The client's streams over the real service: a local book that equals `GET .../book`, trades
once each, the user's own orders and fills; and, against a scripted server, a gap that makes the
book resubscribe and a dropped connection that it survives."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from websockets.asyncio.server import serve

from order_service_client import AsyncClient, Client, LimitOrderRequest, LocalBook, NotFound, OrderData
from order_service_client.models import AssetTransactionData
from order_service_client.streams import book_stream
from tests.e2e.api import unique_suffix

DEADLINE = 30.0


@pytest.fixture(scope="module")
def admin(service):
    with Client(service.base_url, service.admin_token) as client:
        yield client


def _market(admin) -> str:
    asset_id = f"S{unique_suffix().upper()}"[:10]
    admin.create_asset(asset_id, "Stream test coin", tick_size="0.01", lot_size="0.1")
    return asset_id


def _user(admin, asset_id: str):
    created = admin.create_user(f"cs{unique_suffix()}")
    admin.deposit(created.username, "USD", "10000")
    admin.deposit(created.username, asset_id, "100")
    return created


def _book_rows(levels) -> list[tuple[Decimal, Decimal, int]]:
    return [(level.price, level.quantity, level.order_count) for level in levels]


async def _until(iterator, condition, deadline: float = DEADLINE):
    async def scan():
        async for item in iterator:
            if condition(item):
                return item
    return await asyncio.wait_for(scan(), deadline)


def test_the_local_book_equals_the_book_route_at_its_sequence(admin, service):
    asset_id = _market(admin)
    trader, taker = _user(admin, asset_id), _user(admin, asset_id)

    async def session():
        async with AsyncClient(service.base_url, trader.api_key) as client, \
                AsyncClient(service.base_url, taker.api_key) as taking:
            stream = client.stream_book(asset_id)
            first = await _until(stream, lambda book: True)
            assert first.sequence >= 0 and not first.bids and not first.asks
            placed = [await client.place_order(LimitOrderRequest(
                asset_id=asset_id, order_type=side, quantity="1.5", price=price))
                for side, price in (("limit_buy", "99.50"), ("limit_buy", "99.00"), ("limit_sell", "101.25"),
                                    ("limit_sell", "101.25"))]
            await client.cancel_order(placed[1].order_id)
            await taking.place_order(LimitOrderRequest(asset_id=asset_id, order_type="limit_buy", quantity="0.5",
                                                       price="101.25"))
            expected = await client.get_book(asset_id, depth=100)
            book = await _until(stream, lambda book: book.sequence >= expected.sequence)
            await stream.aclose()
            return expected, book

    expected, book = asyncio.run(session())
    assert book.sequence == expected.sequence
    bids, asks = book.levels()
    assert _book_rows(bids) == _book_rows(expected.bids) == [(Decimal("99.5"), Decimal("1.5"), 1)]
    assert _book_rows(asks) == _book_rows(expected.asks) == [(Decimal("101.25"), Decimal("2.5"), 2)]
    assert (book.best_bid, book.best_ask) == (Decimal("99.5"), Decimal("101.25"))


def test_trades_and_the_users_own_orders_and_fills_arrive(admin, service):
    asset_id = _market(admin)
    seller, buyer = _user(admin, asset_id), _user(admin, asset_id)

    async def session():
        async with AsyncClient(service.base_url, seller.api_key) as selling, \
                AsyncClient(service.base_url, buyer.api_key) as buying:
            trades_subscribed, orders_subscribed = asyncio.Event(), asyncio.Event()
            trades = selling.stream_trades(asset_id, trades_subscribed)
            orders = buying.stream_orders(orders_subscribed)
            trades_task = asyncio.ensure_future(_until(trades, lambda trade: True))
            orders_task = asyncio.ensure_future(_until(orders, lambda item: isinstance(item, AssetTransactionData)))
            await asyncio.wait_for(asyncio.gather(trades_subscribed.wait(), orders_subscribed.wait()), DEADLINE)
            await selling.place_order(LimitOrderRequest(asset_id=asset_id, order_type="limit_sell", quantity="2",
                                                        price="50"))
            bought = await buying.place_order(LimitOrderRequest(asset_id=asset_id, order_type="limit_buy",
                                                                quantity="2", price="50"))
            trade, fill = await asyncio.gather(trades_task, orders_task)
            await trades.aclose()
            await orders.aclose()
            return bought, trade, fill

    bought, trade, fill = asyncio.run(session())
    assert (trade.asset_id, trade.price, trade.quantity, trade.taker_side) == (asset_id, Decimal(50), Decimal(2), "buy")
    assert (fill.order_id, fill.transaction_type, fill.quantity) == (bought.order_id, "BUY", Decimal(2))


def test_the_orders_stream_sends_only_the_users_own_order_changes(admin, service):
    asset_id = _market(admin)
    watcher, other = _user(admin, asset_id), _user(admin, asset_id)

    async def session():
        async with AsyncClient(service.base_url, watcher.api_key) as mine, \
                AsyncClient(service.base_url, other.api_key) as theirs:
            subscribed = asyncio.Event()
            stream = mine.stream_orders(subscribed)
            task = asyncio.ensure_future(_until(stream, lambda item: isinstance(item, OrderData)))
            await asyncio.wait_for(subscribed.wait(), DEADLINE)
            await theirs.place_order(LimitOrderRequest(asset_id=asset_id, order_type="limit_buy", quantity="1",
                                                       price="10"))
            placed = await mine.place_order(LimitOrderRequest(asset_id=asset_id, order_type="limit_buy",
                                                              quantity="1", price="11"))
            seen = await task
            await stream.aclose()
            return placed, seen

    placed, seen = asyncio.run(session())
    assert (seen.order_id, seen.username, seen.status) == (placed.order_id, watcher.username, "confirmed")


def test_an_unknown_asset_raises_not_found_instead_of_reconnecting(service):
    async def session():
        async with AsyncClient(service.base_url) as client:
            await asyncio.wait_for(client.stream_book("NOPE404").__anext__(), DEADLINE)

    with pytest.raises(NotFound) as raised:
        asyncio.run(session())
    assert raised.value.code == "ASSET_NOT_FOUND"


def test_local_book_refuses_an_update_that_does_not_follow():
    book = LocalBook("X")
    assert book.apply({"type": "snapshot", "sequence": 4, "bids": [{"price": "1", "quantity": "2", "order_count": 1}],
                       "asks": []})
    assert not book.apply({"type": "update", "first_sequence": 6, "sequence": 6, "bids": [], "asks": []})
    assert book.sequence == 4 and book.best_bid == Decimal(1)
    assert book.apply({"type": "update", "first_sequence": 5, "sequence": 7,
                       "bids": [{"price": "1", "quantity": "0", "order_count": 0}], "asks": []})
    assert book.sequence == 7 and book.best_bid is None


def test_a_gap_resubscribes_and_a_dropped_connection_reconnects_to_a_fresh_snapshot():
    """A scripted server: the first connection sends a snapshot and an update with a gap, then,
    asked again, a new snapshot, then drops; the second connection sends a third snapshot."""
    received: list[list[dict]] = []

    def level(price: str) -> list[dict]:
        return [{"price": price, "quantity": "1", "order_count": 1}]

    async def handler(connection):
        ops: list[dict] = []
        received.append(ops)
        first = len(received) == 1
        async for text in connection:
            frame = json.loads(text)
            ops.append(frame)
            if frame["op"] == "unsubscribe":
                await connection.send(json.dumps({"op": "unsubscribe", "success": True}))
                continue
            await connection.send(json.dumps({"op": "subscribe", "success": True}))
            subscriptions = sum(op["op"] == "subscribe" for op in ops)
            if first and subscriptions == 1:
                await connection.send(json.dumps({"channel": "book", "type": "snapshot", "asset_id": "X",
                                                  "sequence": 1, "bids": level("1"), "asks": []}))
                await connection.send(json.dumps({"channel": "book", "type": "update", "asset_id": "X",
                                                  "first_sequence": 5, "sequence": 5, "bids": level("2"),
                                                  "asks": []}))
            elif first:
                await connection.send(json.dumps({"channel": "book", "type": "snapshot", "asset_id": "X",
                                                  "sequence": 9, "bids": level("3"), "asks": []}))
                await connection.close(1013, "slow consumer")
                return
            else:
                await connection.send(json.dumps({"channel": "book", "type": "snapshot", "asset_id": "X",
                                                  "sequence": 12, "bids": level("4"), "asks": []}))

    async def session():
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            stream = book_stream(f"http://127.0.0.1:{port}", "X")
            books = []
            async for book in stream:
                books.append((book.sequence, book.best_bid))
                if book.sequence == 12:
                    break
            await stream.aclose()
            return books

    books = asyncio.run(asyncio.wait_for(session(), DEADLINE))
    assert books == [(1, Decimal(1)), (9, Decimal(3)), (12, Decimal(4))]
    assert [op["op"] for op in received[0]] == ["subscribe", "unsubscribe", "subscribe"]
    assert [op["op"] for op in received[1]] == ["subscribe"]
