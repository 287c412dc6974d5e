"""The WebSocket streams of API.md: book snapshot and updates equal `GET .../book`, trades
one by one in order, a user's own orders and fills and nobody else's."""

from __future__ import annotations

from decimal import Decimal

from tests.e2e.api import D, levels
from tests.e2e.streams import StreamBook, op, open_stream, receive, receive_until


def _subscribe(connection, channel: str, asset_id: str | None = None) -> list:
    """Subscribe; return the frames that came with the answer (a book's snapshot follows it)."""
    frame = {"op": "subscribe", "channel": channel}
    if asset_id is not None:
        frame["asset_id"] = asset_id
    answer = op(connection, frame)
    assert answer["success"] is True, answer
    assert answer["channel"] == channel
    return []


def test_book_stream_rebuilds_the_book_that_get_book_shows_at_its_sequence(api, service):
    asset_id = api.new_asset()
    maker = api.new_user(usd=100_000, assets={asset_id: 1000})
    taker = api.new_user(usd=100_000, assets={asset_id: 1000})
    api.place(maker, asset_id, "limit_buy", 5, "9.50")
    with open_stream(service.base_url) as connection:
        _subscribe(connection, "book", asset_id)
        book = StreamBook()
        book.apply(receive_until(connection, lambda frame: frame.get("channel") == "book"))
        assert book.levels("bids") == [(Decimal("9.50"), Decimal(5), 1)]
        resting = api.place(maker, asset_id, "limit_sell", 7, "10.25")
        api.place(maker, asset_id, "limit_sell", 3, "10.25")
        api.place(maker, asset_id, "limit_buy", 2, "9.75")
        api.place(taker, asset_id, "market_buy", 4)  # takes 4 of the first ask
        api.place(taker, asset_id, "limit_sell", 1, "9.75")  # empties the 9.75 bid
        assert api.cancel(maker, resting["order_id"]).status_code == 200
        expected = api.book(asset_id, depth=1000)
        while book.sequence < expected["sequence"]:
            book.apply(receive_until(connection, lambda frame: frame.get("channel") == "book"))
        assert book.sequence == expected["sequence"]
        assert book.levels("bids") == levels(expected["bids"])
        assert book.levels("asks") == levels(expected["asks"])
        assert book.levels("asks") == [(Decimal("10.25"), Decimal(3), 1)]


def test_trade_stream_sends_each_trade_once_in_trade_id_order(api, service):
    asset_id = api.new_asset()
    seller = api.new_user(assets={asset_id: 100})
    buyer = api.new_user(usd=100_000)
    with open_stream(service.base_url) as connection:
        _subscribe(connection, "trades", asset_id)
        for price in ("10.00", "10.01", "10.02"):
            api.place(seller, asset_id, "limit_sell", 2, price)
        api.place(buyer, asset_id, "market_buy", 5)
        api.place(buyer, asset_id, "market_buy", 1)
        frames = [receive_until(connection, lambda frame: frame.get("channel") == "trades") for _ in range(4)]
    rest = api.trades(asset_id, limit=10)[::-1]
    assert [frame["trade_id"] for frame in frames] == [trade["trade_id"] for trade in rest]
    assert [(D(frame["price"]), D(frame["quantity"])) for frame in frames] == \
        [(Decimal(price), Decimal(quantity)) for price, quantity in
         [("10.00", 2), ("10.01", 2), ("10.02", 1), ("10.02", 1)]]
    assert all(frame["taker_side"] == "buy" and frame["asset_id"] == asset_id for frame in frames)


def test_orders_stream_shows_the_users_own_orders_and_fills_and_nobody_elses(api, service):
    asset_id = api.new_asset()
    alice = api.new_user(usd=10_000)
    bob = api.new_user(assets={asset_id: 50})
    with open_stream(service.base_url) as alice_stream, open_stream(service.base_url, bob.api_key) as bob_stream:
        assert op(alice_stream, {"op": "auth", "token": alice.api_key})["success"] is True
        _subscribe(alice_stream, "orders")
        # A token in the handshake's header is answered as an auth op would be.
        assert receive(bob_stream) == {"op": "auth", "success": True, "username": bob.username}
        _subscribe(bob_stream, "orders")
        ask = api.place(bob, asset_id, "limit_sell", 10, "5.00")
        bid = api.place(alice, asset_id, "limit_buy", 4, "5.00")
        alice_frames: list = []
        receive_until(alice_stream, lambda f: f.get("channel") == "orders" and f["data"]["status"] == "completed",
                      seen=alice_frames)
        bob_frames: list = []
        receive_until(bob_stream, lambda f: f.get("channel") == "fills", seen=bob_frames)
        receive_until(bob_stream, lambda f: f.get("channel") == "orders" and f["data"]["filled_quantity"] == "4",
                      seen=bob_frames)
    fills = [frame["data"] for frame in alice_frames if frame.get("channel") == "fills"]
    assert [(fill["transaction_type"], fill["quantity"], fill["price"], fill["order_id"]) for fill in fills] == \
        [("BUY", "4", "5", bid["order_id"])]
    for frame in alice_frames:
        data = frame["data"]
        assert data["username"] == alice.username, frame
    for frame in bob_frames:
        assert frame["data"]["username"] == bob.username, frame
    bob_orders = [frame["data"] for frame in bob_frames if frame.get("channel") == "orders"]
    assert bob_orders[0]["order_id"] == ask["order_id"] and bob_orders[-1]["status"] == "processing"
