"""Public market data: assets with best prices, aggregated books and the trade tape."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.e2e.api import D, assert_envelope, assert_error, levels, parse_time

MARKET_ROUTES = ["/api/v1/assets/{}", "/api/v1/assets/{}/book", "/api/v1/assets/{}/trades"]


def test_list_assets_includes_every_created_asset_with_its_fields(api):
    first, second = api.new_asset("0.01", "1"), api.new_asset("0.5", "0.1")
    assets = assert_envelope(api.get("/api/v1/assets"), 200, True)
    by_id = {asset["asset_id"]: asset for asset in assets}
    assert {first, second} <= by_id.keys()
    for asset in (by_id[first], by_id[second]):
        assert {"asset_id", "name", "tick_size", "lot_size", "last_price", "best_bid", "best_ask"} <= asset.keys()
    assert D(by_id[second]["tick_size"]) == Decimal("0.5") and D(by_id[second]["lot_size"]) == Decimal("0.1")
    assert "USD" not in by_id


def test_asset_without_orders_has_no_prices(api):
    asset = api.asset(api.new_asset())
    assert asset["last_price"] is None and asset["best_bid"] is None and asset["best_ask"] is None


def test_asset_shows_best_bid_best_ask_and_last_trade_price(api):
    asset_id = api.new_asset()
    buyer, seller = api.new_user(usd="10000"), api.new_user(assets={asset_id: 10})
    api.place(buyer, asset_id, "limit_buy", 1, "99.5")
    api.place(buyer, asset_id, "limit_buy", 1, "99.75")
    api.place(seller, asset_id, "limit_sell", 1, "101")
    api.place(seller, asset_id, "limit_sell", 1, "100.25")
    asset = api.asset(asset_id)
    assert D(asset["best_bid"]) == Decimal("99.75") and D(asset["best_ask"]) == Decimal("100.25")
    assert asset["last_price"] is None
    api.place(seller, asset_id, "limit_sell", 1, "99.5")  # trades with the best bid at 99.75
    asset = api.asset(asset_id)
    assert D(asset["last_price"]) == Decimal("99.75") and D(asset["best_bid"]) == Decimal("99.5")


@pytest.mark.parametrize("route", MARKET_ROUTES)
def test_unknown_asset_answers_404_asset_not_found(api, route):
    assert_error(api.get(route.format("NOSUCH1")), 404, "ASSET_NOT_FOUND")


def test_book_aggregates_levels_best_first(api):
    asset_id = api.new_asset()
    first, second = api.new_user(usd="10000", assets={asset_id: 20}), api.new_user(usd="10000", assets={asset_id: 20})
    api.place(first, asset_id, "limit_buy", 2, "100")
    api.place(second, asset_id, "limit_buy", 3, "100")
    api.place(first, asset_id, "limit_buy", 1, "98")
    api.place(second, asset_id, "limit_buy", 4, "99")
    api.place(first, asset_id, "limit_sell", 5, "103")
    api.place(second, asset_id, "limit_sell", 1, "101")
    api.place(second, asset_id, "limit_sell", 2, "101")
    book = api.book(asset_id)
    assert book["asset_id"] == asset_id and isinstance(book["sequence"], int)
    assert levels(book["bids"]) == [(100, 5, 2), (99, 4, 1), (98, 1, 1)]
    assert levels(book["asks"]) == [(101, 3, 2), (103, 5, 1)]


def test_book_depth_limits_the_levels_per_side(api):
    asset_id = api.new_asset()
    user = api.new_user(usd="10000", assets={asset_id: 20})
    for price in ("10", "11", "12"):
        api.place(user, asset_id, "limit_buy", 1, price)
    for price in ("20", "21", "22"):
        api.place(user, asset_id, "limit_sell", 1, price)
    book = api.book(asset_id, depth=2)
    assert [price for price, _, _ in levels(book["bids"])] == [12, 11]
    assert [price for price, _, _ in levels(book["asks"])] == [20, 21]


def test_book_sequence_grows_with_changes(api):
    asset_id = api.new_asset()
    user = api.new_user(usd="100")
    before = api.book(asset_id)["sequence"]
    api.place(user, asset_id, "limit_buy", 1, "10")
    assert api.book(asset_id)["sequence"] > before


@pytest.mark.parametrize("depth", [0, 1001, -1, "x"])
def test_book_depth_out_of_range_answers_422(api, depth):
    asset_id = api.new_asset()
    assert_error(api.get(f"/api/v1/assets/{asset_id}/book", params={"depth": depth}), 422)


def test_book_depth_at_bounds_answers_200(api):
    asset_id = api.new_asset()
    api.book(asset_id, depth=1)
    api.book(asset_id, depth=1000)


def test_trades_answer_newest_first_with_maker_price_and_taker_side(api):
    asset_id = api.new_asset()
    buyer, seller = api.new_user(usd="10000"), api.new_user(assets={asset_id: 10})
    api.place(seller, asset_id, "limit_sell", 2, "50")
    api.place(buyer, asset_id, "limit_buy", 2, "55")  # taker buy at the maker's 50
    api.place(buyer, asset_id, "limit_buy", 3, "40")
    api.place(seller, asset_id, "limit_sell", 1, "30")  # taker sell at the maker's 40
    trades = api.trades(asset_id)
    assert len(trades) == 2
    newest, oldest = trades
    assert (D(newest["price"]), D(newest["quantity"]), newest["taker_side"]) == (40, 1, "sell")
    assert (D(oldest["price"]), D(oldest["quantity"]), oldest["taker_side"]) == (50, 2, "buy")
    assert newest["trade_id"] != oldest["trade_id"]
    assert parse_time(newest["timestamp"]) >= parse_time(oldest["timestamp"])


def test_trades_limit_keeps_the_newest(api):
    asset_id = api.new_asset()
    buyer, seller = api.new_user(usd="10000"), api.new_user(assets={asset_id: 10})
    for price in ("10", "11", "12"):
        api.place(seller, asset_id, "limit_sell", 1, price)
        api.place(buyer, asset_id, "market_buy", 1)
    trades = api.trades(asset_id, limit=2)
    assert [D(trade["price"]) for trade in trades] == [12, 11]


@pytest.mark.parametrize("limit", [0, 1001, -5])
def test_trades_limit_out_of_range_answers_422(api, limit):
    asset_id = api.new_asset()
    assert_error(api.get(f"/api/v1/assets/{asset_id}/trades", params={"limit": limit}), 422)


def test_trades_of_asset_without_trades_answer_empty(api):
    assert api.trades(api.new_asset()) == []


def test_book_depth_defaults_to_20_levels(api):
    asset_id = api.new_asset(tick_size="1", lot_size="1")
    user = api.new_user(usd="100000")
    orders = [{"asset_id": asset_id, "order_type": "limit_buy", "quantity": "1", "price": str(100 + index)}
              for index in range(25)]
    assert_envelope(api.post("/api/v1/orders/batch", user, json={"orders": orders}), 200, True)
    bids = levels(api.book(asset_id)["bids"])
    assert [price for price, _, _ in bids] == list(range(124, 104, -1))


def test_trades_limit_defaults_to_the_newest_50(api):
    asset_id = api.new_asset(tick_size="1", lot_size="1")
    seller, buyer = api.new_user(assets={asset_id: 60}), api.new_user(usd="100000")
    orders = [{"asset_id": asset_id, "order_type": "limit_sell", "quantity": "1", "price": str(100 + index)}
              for index in range(55)]
    assert_envelope(api.post("/api/v1/orders/batch", seller, json={"orders": orders}), 200, True)
    assert D(api.place(buyer, asset_id, "market_buy", 55)["filled_quantity"]) == 55
    trades = api.trades(asset_id)
    assert [D(trade["price"]) for trade in trades] == list(range(154, 104, -1))
