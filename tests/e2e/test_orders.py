"""Orders as their owner sees them: creation, reading, cancelling, isolation and idempotency."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from tests.e2e.api import ORDER_FIELDS, D, assert_envelope, assert_error, check_order, parse_time

UNKNOWN_ORDER_ID = 987654321987654


@pytest.fixture
def market(api):
    """A fresh asset (tick 0.01, lot 1) and a buyer and a seller funded for it."""
    asset_id = api.new_asset()
    buyer = api.new_user(usd="10000")
    seller = api.new_user(assets={asset_id: 100})
    return asset_id, buyer, seller


def _normalised_404(response, order_id):
    """The 404 body without what must differ between two requests: the time and the id asked for."""
    body = assert_error(response, 404, "ORDER_NOT_FOUND")
    body.pop("timestamp")
    return re.sub(rf"\b{order_id}\b", "<id>", repr(body))


def test_resting_limit_order_answers_201_confirmed_with_every_field(api, market):
    asset_id, buyer, _ = market
    order = api.place(buyer, asset_id, "limit_buy", 3, "12.5", client_order_id="first-order",
                      description="a note")
    assert ORDER_FIELDS <= order.keys()
    assert order["status"] == "confirmed" and order["reason"] is None
    assert order["order_type"] == "limit_buy" and order["time_in_force"] == "gtc" and order["post_only"] is False
    assert (D(order["quantity"]), D(order["price"]), D(order["filled_quantity"])) == (3, Decimal("12.5"), 0)
    assert D(order["remaining_quantity"]) == 3 and D(order["total_amount"]) == 0
    assert order["average_price"] is None
    assert order["client_order_id"] == "first-order" and order["description"] == "a note"
    assert parse_time(order["updated_at"]) >= parse_time(order["created_at"])


def test_order_without_optional_fields_answers_nulls_and_defaults(api, market):
    asset_id, buyer, _ = market
    order = api.place(buyer, asset_id, "limit_buy", 1, "1")
    assert order["client_order_id"] is None and order["description"] is None
    assert order["time_in_force"] == "gtc" and order["post_only"] is False


def test_market_order_defaults_to_ioc(api, market):
    asset_id, buyer, seller = market
    api.place(seller, asset_id, "limit_sell", 1, "10")
    order = api.place(buyer, asset_id, "market_buy", 1)
    assert order["time_in_force"] == "ioc" and order["status"] == "completed"


def test_get_order_answers_what_the_post_answered(api, market):
    asset_id, buyer, _ = market
    placed = api.place(buyer, asset_id, "limit_buy", 2, "7")
    assert api.order(buyer, placed["order_id"]) == placed


def test_get_unknown_order_answers_404_order_not_found(api, market):
    _, buyer, _ = market
    body = assert_error(api.get(f"/api/v1/orders/{UNKNOWN_ORDER_ID}", buyer), 404, "ORDER_NOT_FOUND")
    assert body["data"] is None


def test_get_other_users_order_answers_404_exactly_as_an_unknown_id(api, market):
    asset_id, buyer, seller = market
    order = api.place(buyer, asset_id, "limit_buy", 1, "5")
    foreign = _normalised_404(api.get(f"/api/v1/orders/{order['order_id']}", seller), order["order_id"])
    unknown = _normalised_404(api.get(f"/api/v1/orders/{UNKNOWN_ORDER_ID}", seller), UNKNOWN_ORDER_ID)
    assert foreign == unknown


def test_cancel_other_users_order_answers_404_exactly_as_an_unknown_id_and_leaves_it_open(api, market):
    asset_id, buyer, seller = market
    order = api.place(buyer, asset_id, "limit_buy", 1, "5")
    foreign = _normalised_404(api.cancel(seller, order["order_id"]), order["order_id"])
    unknown = _normalised_404(api.cancel(seller, UNKNOWN_ORDER_ID), UNKNOWN_ORDER_ID)
    assert foreign == unknown
    assert api.order(buyer, order["order_id"])["status"] == "confirmed"
    assert api.amounts(buyer, "USD") == (Decimal(9995), Decimal(5))


def test_other_users_orders_balances_and_transactions_stay_invisible(api, market):
    asset_id, buyer, seller = market
    api.place(seller, asset_id, "limit_sell", 1, "5")
    api.place(buyer, asset_id, "limit_buy", 1, "5")
    api.place(buyer, asset_id, "limit_buy", 1, "4")
    outsider = api.new_user()
    listing = api.orders(outsider)
    assert listing["username"] == outsider.username and listing["total_count"] == 0 and listing["orders"] == []
    for asset in ("USD", asset_id):
        balance = api.balance(outsider, asset)
        assert balance["username"] == outsider.username
        assert (D(balance["quantity"]), D(balance["available"]), D(balance["locked"])) == (0, 0, 0)
    transactions = api.transactions(outsider, asset_id)
    assert transactions["username"] == outsider.username and transactions["total_count"] == 0
    portfolio = api.portfolio(outsider)
    assert portfolio["assets"] == [] and D(portfolio["total_portfolio_value"]) == 0
    assert api.orders(buyer)["total_count"] == 2 and api.orders(seller)["total_count"] == 1


def test_cancel_resting_buy_answers_cancelled_and_releases_usd_hold(api, market):
    asset_id, buyer, _ = market
    order = api.place(buyer, asset_id, "limit_buy", 4, "25")
    assert api.amounts(buyer, "USD") == (Decimal(9900), Decimal(100))
    cancelled = check_order(assert_envelope(api.cancel(buyer, order["order_id"]), 200, True))
    assert cancelled["order_id"] == order["order_id"]
    assert cancelled["status"] == "cancelled" and cancelled["reason"] == "user_cancelled"
    assert D(cancelled["filled_quantity"]) == 0 and D(cancelled["remaining_quantity"]) == 4
    assert api.amounts(buyer, "USD") == (Decimal(10000), Decimal(0))
    assert api.order(buyer, order["order_id"]) == cancelled
    assert api.book(asset_id)["bids"] == []


def test_cancel_resting_sell_releases_asset_hold(api, market):
    asset_id, _, seller = market
    order = api.place(seller, asset_id, "limit_sell", 30, "9")
    assert api.amounts(seller, asset_id) == (Decimal(70), Decimal(30))
    assert_envelope(api.cancel(seller, order["order_id"]), 200, True)
    assert api.amounts(seller, asset_id) == (Decimal(100), Decimal(0))


def test_cancel_partially_filled_order_releases_remaining_hold(api, market):
    asset_id, buyer, seller = market
    order = api.place(buyer, asset_id, "limit_buy", 3, "100")
    api.place(seller, asset_id, "limit_sell", 1, "100")
    api.settled_order(buyer, order["order_id"], 1)
    assert api.amounts(buyer, "USD") == (Decimal(9700), Decimal(200))
    cancelled = check_order(assert_envelope(api.cancel(buyer, order["order_id"]), 200, True))
    assert cancelled["status"] == "cancelled" and cancelled["reason"] == "user_cancelled"
    assert (D(cancelled["filled_quantity"]), D(cancelled["remaining_quantity"])) == (1, 2)
    assert D(cancelled["total_amount"]) == 100 and D(cancelled["average_price"]) == 100
    assert api.amounts(buyer, "USD") == (Decimal(9900), Decimal(0))
    assert api.amounts(buyer, asset_id) == (Decimal(1), Decimal(0))


def test_cancel_cancelled_order_answers_409_order_not_open(api, market):
    asset_id, buyer, _ = market
    order = api.place(buyer, asset_id, "limit_buy", 1, "10")
    assert_envelope(api.cancel(buyer, order["order_id"]), 200, True)
    assert_error(api.cancel(buyer, order["order_id"]), 409, "ORDER_NOT_OPEN")
    assert api.amounts(buyer, "USD") == (Decimal(10000), Decimal(0))


def test_cancel_completed_order_answers_409_order_not_open(api, market):
    asset_id, buyer, seller = market
    api.place(seller, asset_id, "limit_sell", 2, "10")
    order = api.place(buyer, asset_id, "limit_buy", 2, "10")
    assert order["status"] == "completed"
    assert_error(api.cancel(buyer, order["order_id"]), 409, "ORDER_NOT_OPEN")
    assert api.order(buyer, order["order_id"])["status"] == "completed"


def test_cancel_unknown_order_answers_404_order_not_found(api, market):
    _, buyer, _ = market
    assert_error(api.cancel(buyer, UNKNOWN_ORDER_ID), 404, "ORDER_NOT_FOUND")


def test_limit_buy_beyond_available_usd_answers_422_insufficient_balance_and_records_nothing(api, market):
    asset_id, buyer, _ = market
    assert_error(api.submit(buyer, asset_id, "limit_buy", 101, "100"), 422, "INSUFFICIENT_BALANCE")
    assert api.orders(buyer)["total_count"] == 0
    assert api.amounts(buyer, "USD") == (Decimal(10000), Decimal(0))
    assert api.book(asset_id)["bids"] == []


def test_limit_buy_for_exactly_the_available_usd_is_accepted(api, market):
    asset_id, buyer, _ = market
    api.place(buyer, asset_id, "limit_buy", 100, "100")
    assert api.amounts(buyer, "USD") == (Decimal(0), Decimal(10000))


def test_limit_sell_beyond_available_asset_answers_422_insufficient_balance(api, market):
    asset_id, _, seller = market
    api.place(seller, asset_id, "limit_sell", 60, "10")
    assert_error(api.submit(seller, asset_id, "limit_sell", 41, "10"), 422, "INSUFFICIENT_BALANCE")
    assert api.amounts(seller, asset_id) == (Decimal(40), Decimal(60))
    assert api.orders(seller)["total_count"] == 1


@pytest.mark.parametrize("order_type", ["market_buy", "market_sell"])
def test_market_order_with_nothing_available_answers_422_insufficient_balance(api, order_type):
    asset_id = api.new_asset()
    maker = api.new_user(usd="1000", assets={asset_id: 10})
    api.place(maker, asset_id, "limit_sell", 1, "10")
    api.place(maker, asset_id, "limit_buy", 1, "9")
    pauper = api.new_user()
    assert_error(api.submit(pauper, asset_id, order_type, 1), 422, "INSUFFICIENT_BALANCE")
    assert api.orders(pauper)["total_count"] == 0
    assert len(api.book(asset_id)["asks"]) == 1 and len(api.book(asset_id)["bids"]) == 1


def test_duplicate_client_order_id_answers_409_with_the_earlier_order(api, market):
    asset_id, buyer, _ = market
    first = api.place(buyer, asset_id, "limit_buy", 1, "10", client_order_id="retry-me")
    response = api.submit(buyer, asset_id, "limit_buy", 1, "10", client_order_id="retry-me")
    body = assert_error(response, 409, "DUPLICATE_CLIENT_ORDER_ID")
    assert body["data"]["order_id"] == first["order_id"]
    assert check_order(body["data"]) == first
    assert api.orders(buyer)["total_count"] == 1
    assert api.amounts(buyer, "USD") == (Decimal(9990), Decimal(10))


def test_duplicate_client_order_id_answers_the_earlier_order_in_its_current_state(api, market):
    asset_id, buyer, _ = market
    first = api.place(buyer, asset_id, "limit_buy", 1, "10", client_order_id="cancel-then-retry")
    api.cancel(buyer, first["order_id"])
    response = api.submit(buyer, asset_id, "limit_sell", 5, "99", client_order_id="cancel-then-retry")
    body = assert_error(response, 409, "DUPLICATE_CLIENT_ORDER_ID")
    assert body["data"]["order_id"] == first["order_id"]
    assert body["data"]["status"] == "cancelled" and body["data"]["order_type"] == "limit_buy"


def test_client_order_id_is_unique_per_user_only(api, market):
    asset_id, buyer, seller = market
    mine = api.place(buyer, asset_id, "limit_buy", 1, "10", client_order_id="shared-id")
    theirs = api.place(seller, asset_id, "limit_sell", 1, "20", client_order_id="shared-id")
    assert mine["order_id"] != theirs["order_id"]


def test_rejected_order_does_not_use_up_its_client_order_id(api, market):
    asset_id, buyer, _ = market
    assert_error(api.submit(buyer, asset_id, "limit_buy", 1000, "100", client_order_id="funded-later"),
                 422, "INSUFFICIENT_BALANCE")
    order = api.place(buyer, asset_id, "limit_buy", 1, "100", client_order_id="funded-later")
    assert order["client_order_id"] == "funded-later"


def test_order_ids_are_unique_across_users(api, market):
    asset_id, buyer, seller = market
    ids = {api.place(buyer, asset_id, "limit_buy", 1, "1")["order_id"] for _ in range(3)}
    ids |= {api.place(seller, asset_id, "limit_sell", 1, "50")["order_id"] for _ in range(3)}
    assert len(ids) == 6


def _comparable(response) -> tuple:
    """Status and body without what must differ between two orders: ids and times."""
    body = response.json()
    body.pop("timestamp")
    data = body.get("data") or {}
    for key in ("order_id", "created_at", "updated_at"):
        data.pop(key, None)
    return response.status_code, body


def test_an_order_answers_the_same_by_the_direct_path_and_by_the_declared_route(api, market):
    # A gateway serves a key it has already seen by a direct path past FastAPI's dependency
    # solving; the first request of a key, and anything not plainly valid, takes the declared route.
    asset_id, buyer, _ = market
    fresh = api.new_user(usd="10000")
    order = {"asset_id": asset_id, "order_type": "limit_buy", "quantity": "2", "price": "1.50"}
    first = api.post("/api/v1/orders", fresh, json=order)  # unseen key: the declared route
    again = api.post("/api/v1/orders", fresh, json=order)  # seen key: the direct path
    assert _comparable(first) == _comparable(again)
    assert first.status_code == 201 and first.json()["data"]["order_id"] != again.json()["data"]["order_id"]

    charset = api.http.post("/api/v1/orders", content=json.dumps(order),
                       headers={**fresh.headers, "Content-Type": "application/json; charset=utf-8"})
    assert _comparable(charset) == _comparable(first)
    as_text = api.http.post("/api/v1/orders", content=json.dumps(order),
                       headers={**fresh.headers, "Content-Type": "text/plain"})
    assert_error(as_text, 422)

    invalid = {**order, "quantity": "2.5"}  # off the lot size: refused after validation, by the engine's rules
    unseen = api.new_user(usd="10000")
    assert _comparable(api.post("/api/v1/orders", unseen, json=invalid)) == \
        _comparable(api.post("/api/v1/orders", fresh, json=invalid))
    malformed = {**order, "price": "one"}
    assert _comparable(api.post("/api/v1/orders", api.new_user(usd="1"), json=malformed)) == \
        _comparable(api.post("/api/v1/orders", fresh, json=malformed))
    wrong_scheme = api.http.post("/api/v1/orders", json=order, headers={"Authorization": f"Basic {fresh.api_key}"})
    assert_error(wrong_scheme, 401)
    assert [o["quantity"] for o in api.orders(fresh)["orders"]] == ["2", "2", "2"]
