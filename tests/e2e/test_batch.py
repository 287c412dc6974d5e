"""`POST /api/v1/orders/batch`: 1–100 orders, answered in request order, each on its own."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.e2e.api import D, assert_envelope, assert_error, check_order


def _order(asset_id, order_type="limit_buy", quantity="1", price="10", **fields):
    body = {"asset_id": asset_id, "order_type": order_type, "quantity": quantity, **fields}
    if price is not None:
        body["price"] = price
    return body


def _batch(api, user, orders):
    return api.post("/api/v1/orders/batch", user, json={"orders": orders})


def test_batch_answers_results_in_request_order(api):
    asset_id = api.new_asset()
    user = api.new_user(usd="100000")
    prices = ["15", "11", "19", "12", "10"]
    results = assert_envelope(_batch(api, user, [_order(asset_id, price=p) for p in prices]), 200, True)["results"]
    assert len(results) == 5
    assert all(result["success"] is True for result in results)
    assert [D(check_order(result["data"])["price"]) for result in results] == [Decimal(p) for p in prices]
    for result in results:
        assert api.order(user, result["data"]["order_id"]) == result["data"]
    assert api.orders(user)["total_count"] == 5


def test_batch_failure_of_one_order_leaves_the_others_placed(api):
    asset_id = api.new_asset()
    user = api.new_user(usd="100000")
    orders = [_order(asset_id, price="10"), _order(asset_id, price="10.001"), _order("NOSUCH3"),
              _order(asset_id, price="12")]
    results = assert_envelope(_batch(api, user, orders), 200, True)["results"]
    assert [result["success"] for result in results] == [True, False, False, True]
    assert results[1]["error"]["code"] == "INVALID_TICK_SIZE"
    assert results[2]["error"]["code"] == "UNKNOWN_ASSET"
    assert {"code", "details"} <= results[1]["error"].keys()
    assert api.orders(user)["total_count"] == 2
    assert api.amounts(user, "USD") == (Decimal(100000 - 22), Decimal(22))


def test_batch_orders_are_funded_in_request_order(api):
    asset_id = api.new_asset()
    user = api.new_user(usd="250")
    orders = [_order(asset_id, quantity="1", price="100"), _order(asset_id, quantity="1", price="100"),
              _order(asset_id, quantity="1", price="100"), _order(asset_id, quantity="1", price="50")]
    results = assert_envelope(_batch(api, user, orders), 200, True)["results"]
    assert [result["success"] for result in results] == [True, True, False, True]
    assert results[2]["error"]["code"] == "INSUFFICIENT_BALANCE"
    assert api.amounts(user, "USD") == (Decimal(0), Decimal(250))


def test_batch_orders_match_each_other_in_request_order(api):
    asset_id = api.new_asset()
    buyer, seller = api.new_user(usd="1000"), api.new_user(assets={asset_id: 10})
    assert_envelope(_batch(api, seller, [_order(asset_id, "limit_sell", "2", "30"),
                                         _order(asset_id, "limit_sell", "2", "20")]), 200, True)
    results = assert_envelope(_batch(api, buyer, [_order(asset_id, "limit_buy", "3", "30"),
                                                  _order(asset_id, "market_buy", "2", None)]), 200, True)["results"]
    first, second = (check_order(result["data"]) for result in results)
    assert first["status"] == "completed" and D(first["total_amount"]) == 2 * 20 + 30
    assert second["status"] == "cancelled" and second["reason"] == "no_liquidity"
    assert D(second["filled_quantity"]) == 1 and D(second["price"]) == 30


def test_batch_duplicate_client_order_id_fails_only_the_repeat(api):
    asset_id = api.new_asset()
    user = api.new_user(usd="1000")
    orders = [_order(asset_id, client_order_id="batch-a"), _order(asset_id, client_order_id="batch-a"),
              _order(asset_id, client_order_id="batch-b")]
    results = assert_envelope(_batch(api, user, orders), 200, True)["results"]
    assert [result["success"] for result in results] == [True, False, True]
    assert results[1]["error"]["code"] == "DUPLICATE_CLIENT_ORDER_ID"
    assert api.orders(user)["total_count"] == 2


def test_batch_of_100_orders_is_accepted(api):
    asset_id = api.new_asset()
    user = api.new_user(usd="100000")
    orders = [_order(asset_id, price=str(1 + index)) for index in range(100)]
    results = assert_envelope(_batch(api, user, orders), 200, True)["results"]
    assert len(results) == 100 and all(result["success"] for result in results)
    assert [D(result["data"]["price"]) for result in results] == list(range(1, 101))
    assert api.orders(user, limit=1)["total_count"] == 100


@pytest.mark.parametrize("count", [0, 101])
def test_batch_with_0_or_101_orders_answers_422_and_places_nothing(api, count):
    asset_id = api.new_asset()
    user = api.new_user(usd="100000")
    assert_error(_batch(api, user, [_order(asset_id) for _ in range(count)]), 422)
    assert api.orders(user)["total_count"] == 0


def test_batch_without_orders_field_answers_422(api):
    user = api.new_user()
    assert_error(api.post("/api/v1/orders/batch", user, json={}), 422)
