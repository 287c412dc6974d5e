"""`GET /api/v1/orders`: newest first, `limit`/`offset` pages, and filters."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.e2e.api import D, assert_envelope, assert_error, check_order, parse_time


@pytest.fixture
def history(api):
    """A user with five orders of several kinds on two assets, oldest first."""
    first_asset, second_asset = api.new_asset(), api.new_asset()
    user = api.new_user(usd="100000", assets={first_asset: 100, second_asset: 100})
    counterparty = api.new_user(usd="100000", assets={first_asset: 100})
    api.place(counterparty, first_asset, "limit_sell", 1, "30")
    orders = [
        api.place(user, first_asset, "limit_buy", 1, "10"),
        api.place(user, first_asset, "limit_sell", 2, "50"),
        api.place(user, second_asset, "limit_buy", 3, "20"),
        api.place(user, first_asset, "market_buy", 1),
        api.place(user, second_asset, "limit_sell", 4, "60"),
    ]
    assert orders[3]["status"] == "completed"
    cancelled = api.cancel(user, orders[2]["order_id"]).json()["data"]
    orders[2] = cancelled
    return user, first_asset, second_asset, orders


def _ids(listing):
    return [order["order_id"] for order in listing["orders"]]


def test_list_orders_answers_newest_first_with_counts(api, history):
    user, _, _, orders = history
    listing = api.orders(user)
    assert listing["username"] == user.username
    assert listing["total_count"] == 5 and listing["has_more"] is False
    assert _ids(listing) == [order["order_id"] for order in reversed(orders)]
    for order in listing["orders"]:
        check_order(order)
    assert listing["orders"][2] == orders[2]


def test_list_orders_pages_with_limit_and_offset(api, history):
    user, _, _, orders = history
    newest_first = [order["order_id"] for order in reversed(orders)]
    first = api.orders(user, limit=2, offset=0)
    assert _ids(first) == newest_first[:2] and first["total_count"] == 5 and first["has_more"] is True
    second = api.orders(user, limit=2, offset=2)
    assert _ids(second) == newest_first[2:4] and second["has_more"] is True
    last = api.orders(user, limit=2, offset=4)
    assert _ids(last) == newest_first[4:] and last["total_count"] == 5 and last["has_more"] is False
    beyond = api.orders(user, limit=2, offset=10)
    assert beyond["orders"] == [] and beyond["total_count"] == 5 and beyond["has_more"] is False
    exact = api.orders(user, limit=5, offset=0)
    assert len(exact["orders"]) == 5 and exact["has_more"] is False


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": -1}, {"offset": -1},
                                    {"limit": "many"}])
def test_list_orders_with_limit_or_offset_out_of_range_answers_422(api, history, params):
    user = history[0]
    assert_error(api.get("/api/v1/orders", user, params=params), 422)


def test_list_orders_accepts_limit_at_its_bounds(api, history):
    user = history[0]
    assert len(api.orders(user, limit=1)["orders"]) == 1
    assert len(api.orders(user, limit=100)["orders"]) == 5


def test_list_orders_filters_by_status(api, history):
    user, _, _, orders = history
    assert _ids(api.orders(user, status="cancelled")) == [orders[2]["order_id"]]
    assert _ids(api.orders(user, status="completed")) == [orders[3]["order_id"]]
    confirmed = api.orders(user, status="confirmed")
    assert _ids(confirmed) == [orders[4]["order_id"], orders[1]["order_id"], orders[0]["order_id"]]
    assert confirmed["total_count"] == 3
    assert api.orders(user, status="failed")["total_count"] == 0


def test_list_orders_filters_by_order_type(api, history):
    user, _, _, orders = history
    assert _ids(api.orders(user, order_type="limit_sell")) == [orders[4]["order_id"], orders[1]["order_id"]]
    assert _ids(api.orders(user, order_type="market_buy")) == [orders[3]["order_id"]]
    assert api.orders(user, order_type="market_sell")["total_count"] == 0


def test_list_orders_filters_by_asset(api, history):
    user, first_asset, second_asset, orders = history
    assert _ids(api.orders(user, asset_id=second_asset)) == [orders[4]["order_id"], orders[2]["order_id"]]
    assert api.orders(user, asset_id=first_asset)["total_count"] == 3


def test_list_orders_combines_filters_and_pages(api, history):
    user, first_asset, _, orders = history
    page = api.orders(user, asset_id=first_asset, order_type="limit_buy", status="confirmed", limit=1)
    assert _ids(page) == [orders[0]["order_id"]] and page["total_count"] == 1 and page["has_more"] is False


def test_list_orders_filters_by_creation_dates(api, history):
    user, _, _, orders = history
    created = [parse_time(order["created_at"]) for order in orders]
    assert created == sorted(created)
    between = created[1] + (created[2] - created[1]) / 2
    assert created[1] < between < created[2]
    since = api.orders(user, start_date=between.isoformat())
    assert _ids(since) == [order["order_id"] for order in reversed(orders[2:])]
    until = api.orders(user, end_date=between.isoformat())
    assert _ids(until) == [orders[1]["order_id"], orders[0]["order_id"]]
    day = timedelta(days=1)
    assert api.orders(user, start_date=(created[-1] + day).isoformat())["total_count"] == 0
    assert api.orders(user, end_date=(created[0] - day).isoformat())["total_count"] == 0
    window = api.orders(user, start_date=(created[0] - day).isoformat(), end_date=(created[-1] + day).isoformat())
    assert window["total_count"] == 5


@pytest.mark.parametrize("params", [{"status": "bogus"}, {"order_type": "stop"}, {"start_date": "yesterday"}])
def test_list_orders_with_invalid_filter_answers_422(api, history, params):
    assert_error(api.get("/api/v1/orders", history[0], params=params), 422)


def test_list_orders_limit_defaults_to_50(api):
    asset_id = api.new_asset(tick_size="1", lot_size="1")
    user = api.new_user(usd="100000")
    orders = [{"asset_id": asset_id, "order_type": "limit_buy", "quantity": "1", "price": str(1 + index)}
              for index in range(55)]
    assert_envelope(api.post("/api/v1/orders/batch", user, json={"orders": orders}), 200, True)
    listing = api.orders(user)
    assert len(listing["orders"]) == 50 and listing["total_count"] == 55 and listing["has_more"] is True
    assert [D(order["price"]) for order in listing["orders"]] == list(range(55, 5, -1))
