"""Stop-loss and take-profit orders, amends (PATCH) and cancel-all (DELETE /orders) over HTTP.

Every rule of API.md's "Stop-loss and take-profit orders" and "Changing open orders": holds
taken at placement and kept while a stop waits, triggers and their cascades, amends that
shrink in place, move (and trade at once when they cross) or are refused with nothing
changed, cancel-all of one asset or all; and a waiting stop across a kill -9.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.e2e.api import D, assert_envelope, assert_error, check_order

UNKNOWN_ORDER_ID = 987654321987654


@pytest.fixture
def market(api):
    """A fresh asset (tick 0.01, lot 1) that last traded at 100, and two funded traders."""
    asset_id = api.new_asset()
    alice = api.new_user(usd="10000", assets={asset_id: 100})
    bob = api.new_user(usd="10000", assets={asset_id: 100})
    api.place(alice, asset_id, "limit_sell", 1, "100")
    assert api.place(bob, asset_id, "limit_buy", 1, "100")["status"] == "completed"
    return asset_id, alice, bob


def trade(api, seller, buyer, asset_id, price, quantity=1):
    api.place(seller, asset_id, "limit_sell", quantity, price)
    return api.place(buyer, asset_id, "limit_buy", quantity, price)


def bids(api, asset_id) -> list[tuple[Decimal, Decimal, int]]:
    return [(D(level["price"]), D(level["quantity"]), level["order_count"]) for level in api.book(asset_id)["bids"]]


# ---- stops -------------------------------------------------------------------


def test_stop_waits_pending_holding_what_the_same_order_holds_and_lists_as_pending(api, market):
    asset_id, alice, _ = market
    before = api.amounts(alice, "USD")
    stop = api.place_stop(alice, asset_id, "limit_buy", 2, "105", "stop_loss", price="106")
    assert (D(stop["stop_price"]), D(stop["price"])) == (105, 106)
    available, locked = api.amounts(alice, "USD")
    assert (available, locked) == (before[0] - 212, before[1] + 212)
    assert api.order(alice, stop["order_id"]) == stop
    listed = api.orders(alice, status="pending")["orders"]
    assert [order["order_id"] for order in listed] == [stop["order_id"]]
    assert bids(api, asset_id) == []  # off the book while it waits
    sell_stop = api.place_stop(alice, asset_id, "market_sell", 3, "95", "stop_loss")
    assert sell_stop["time_in_force"] == "ioc" and D(api.balance(alice, asset_id)["locked"]) == 3


@pytest.mark.parametrize("fields, status, code", [
    ({"order_type": "limit_sell", "price": "90", "stop_price": "95.001", "stop_kind": "stop_loss"},
     422, "INVALID_TICK_SIZE"),
    ({"order_type": "limit_sell", "price": "90", "stop_price": "95"}, 422, "INVALID_ORDER"),
    ({"order_type": "limit_sell", "price": "90", "stop_kind": "stop_loss"}, 422, "INVALID_ORDER"),
    ({"order_type": "limit_sell", "price": "90", "stop_price": "95", "stop_kind": "trailing"},
     422, "VALIDATION_ERROR"),
    ({"order_type": "market_buy", "stop_price": "105", "stop_kind": "stop_loss"}, 422, "INVALID_ORDER"),
    ({"order_type": "limit_sell", "price": "96", "stop_price": "95", "stop_kind": "stop_loss",
      "post_only": True}, 422, "INVALID_ORDER"),
    ({"order_type": "limit_sell", "price": "90", "stop_price": "95", "stop_kind": "stop_loss",
      "time_in_force": "fok"}, 422, "INVALID_ORDER"),
    ({"order_type": "limit_sell", "price": "90", "stop_price": "100", "stop_kind": "stop_loss"},
     422, "STOP_WOULD_TRIGGER"),  # the last price, 100, is at or below 100
    ({"order_type": "limit_buy", "price": "90", "stop_price": "101", "stop_kind": "take_profit"},
     422, "STOP_WOULD_TRIGGER"),  # 100 <= 101
])
def test_bad_stop_orders_are_refused_with_nothing_held_or_recorded(api, market, fields, status, code):
    asset_id, alice, _ = market
    before = (api.amounts(alice, "USD"), api.amounts(alice, asset_id), api.orders(alice)["total_count"])
    response = api.post("/api/v1/orders", alice, json={"asset_id": asset_id, "quantity": "1", **fields})
    assert_error(response, status, code)
    assert (api.amounts(alice, "USD"), api.amounts(alice, asset_id), api.orders(alice)["total_count"]) == before


def test_trade_triggers_stop_which_fills_and_records_its_trigger_time(api, market):
    asset_id, alice, bob = market
    stop = api.place_stop(alice, asset_id, "market_sell", 4, "99", "stop_loss")
    api.place(bob, asset_id, "limit_buy", 10, "97")
    trade(api, bob, alice, asset_id, "99")  # the trade at 99 reaches the trigger
    order = api.settled_order(alice, stop["order_id"], 4)
    assert order["status"] == "completed" and order["triggered_at"] is not None
    assert D(order["average_price"]) == 97 and D(api.balance(alice, asset_id)["locked"]) == 0


def test_one_trade_triggers_a_cascade_of_three_stops_in_trigger_order(api, market):
    asset_id, alice, bob = market
    carol = api.new_user(usd="10000", assets={asset_id: 100})
    stops = [api.place_stop(alice, asset_id, "market_sell", 1, "98", "stop_loss"),
             api.place_stop(carol, asset_id, "market_sell", 1, "99", "stop_loss"),
             api.place_stop(alice, asset_id, "market_sell", 1, "97", "stop_loss")]
    for price in ("99", "98", "97", "96"):  # each stop's own sale reaches the next trigger
        api.place(bob, asset_id, "limit_buy", 1, price)
    api.place(bob, asset_id, "limit_buy", 1, "99.5")
    assert api.place(carol, asset_id, "market_sell", 1)["status"] == "completed"  # at 99.5: nothing yet
    api.place(carol, asset_id, "market_sell", 1)  # at 99: triggers carol's 99; it sells at 98: alice's 98 ...
    owners = {stop["order_id"]: user for stop, user in zip(stops, (alice, carol, alice))}
    done = {order_id: api.settled_order(user, order_id, 1) for order_id, user in owners.items()}
    prices = [D(done[stop["order_id"]]["average_price"]) for stop in stops]
    assert prices == [97, 98, 96]  # carol's 99 sold at 98, alice's 98 at 97, alice's 97 at 96
    times = [done[stop["order_id"]]["triggered_at"] for stop in stops]
    assert times[1] <= times[0] <= times[2]


def test_cancel_waiting_stop_answers_cancelled_and_releases_its_hold(api, market):
    asset_id, alice, _ = market
    stop = api.place_stop(alice, asset_id, "limit_sell", 5, "90", "stop_loss", price="89")
    cancelled = assert_envelope(api.cancel(alice, stop["order_id"]), 200, True)
    assert (cancelled["status"], cancelled["reason"], cancelled["triggered_at"]) == (
        "cancelled", "user_cancelled", None)
    assert D(api.balance(alice, asset_id)["locked"]) == 0


# ---- amends ------------------------------------------------------------------


def test_amend_fewer_lots_keeps_time_priority_and_shrinks_the_hold(api, market):
    asset_id, alice, bob = market
    first = api.place(alice, asset_id, "limit_buy", 5, "90")
    second = api.place(bob, asset_id, "limit_buy", 5, "90")
    amended = assert_envelope(api.amend(alice, first["order_id"], quantity=2), 200, True)
    check_order(amended)
    assert (D(amended["quantity"]), D(amended["remaining_quantity"])) == (2, 2)
    assert D(api.balance(alice, "USD")["locked"]) == 180
    carol = api.new_user(assets={asset_id: 10})
    sold = api.place(carol, asset_id, "market_sell", 3)
    assert D(sold["average_price"]) == 90
    assert api.settled_order(alice, first["order_id"], 2)["status"] == "completed"  # first in line still
    assert api.settled_order(bob, second["order_id"], 1)["status"] == "processing"


def test_amend_price_moves_the_order_resizes_the_hold_and_a_crossing_move_trades(api, market):
    asset_id, alice, bob = market
    buy = api.place(alice, asset_id, "limit_buy", 4, "90")
    api.place(bob, asset_id, "limit_sell", 3, "95")
    moved = assert_envelope(api.amend(alice, buy["order_id"], price="92"), 200, True)
    assert (D(moved["price"]), moved["status"]) == (92, "confirmed")
    assert D(api.balance(alice, "USD")["locked"]) == 368
    crossed = assert_envelope(api.amend(alice, buy["order_id"], price="96", quantity=3), 200, True)
    assert (crossed["status"], D(crossed["filled_quantity"]), D(crossed["average_price"])) == ("completed", 3, 95)
    assert D(api.balance(alice, "USD")["locked"]) == 0


def test_amend_refusals_answer_their_code_and_change_nothing(api, market):
    asset_id, alice, bob = market
    buy = api.place(alice, asset_id, "limit_buy", 4, "90")
    api.place(bob, asset_id, "limit_sell", 1, "90")  # alice's bid: 1 of 4 filled
    api.settled_order(alice, buy["order_id"], 1)
    poor = api.new_user(usd="100")
    poor_buy = api.place(poor, asset_id, "limit_buy", 1, "100")
    post_only = api.place(bob, asset_id, "limit_sell", 1, "120", post_only=True)
    before = api.order(alice, buy["order_id"])
    cases = [
        (alice, buy["order_id"], {}, 422, "INVALID_AMEND"),
        (alice, buy["order_id"], {"quantity": "1"}, 422, "INVALID_AMEND"),  # at filled
        (alice, buy["order_id"], {"quantity": "0"}, 422, "INVALID_AMEND"),
        (alice, buy["order_id"], {"quantity": "5"}, 422, "INVALID_AMEND"),  # above the quantity
        (alice, buy["order_id"], {"quantity": "4", "price": "90"}, 422, "INVALID_AMEND"),  # the same values
        (alice, buy["order_id"], {"price": "90.001"}, 422, "INVALID_TICK_SIZE"),
        (alice, buy["order_id"], {"quantity": "2.5"}, 422, "INVALID_LOT_SIZE"),
        (bob, buy["order_id"], {"quantity": "2"}, 404, "ORDER_NOT_FOUND"),
        (alice, UNKNOWN_ORDER_ID, {"quantity": "2"}, 404, "ORDER_NOT_FOUND"),
        (poor, poor_buy["order_id"], {"price": "101"}, 422, "INSUFFICIENT_BALANCE"),
        (bob, post_only["order_id"], {"price": "90"}, 422, "POST_ONLY_WOULD_MATCH"),
    ]
    for user, order_id, body, status, code in cases:
        response = api.patch(f"/api/v1/orders/{order_id}", user, json=body)
        assert_error(response, status, code)
    assert api.order(alice, buy["order_id"]) == before
    assert D(api.order(poor, poor_buy["order_id"])["price"]) == 100 and D(api.balance(poor, "USD")["available"]) == 0
    assert D(api.order(bob, post_only["order_id"])["price"]) == 120 and api.order(bob, post_only["order_id"])["post_only"]
    assert_envelope(api.cancel(alice, buy["order_id"]), 200, True)
    closed = assert_error(api.amend(alice, buy["order_id"], quantity=2), 409, "ORDER_NOT_OPEN")
    assert closed["data"]["status"] == "cancelled"
    assert_error(api.amend(bob, buy["order_id"], quantity=2), 404, "ORDER_NOT_FOUND")


def test_amend_waiting_stop_changes_quantity_and_limit_price_and_keeps_it_waiting(api, market):
    asset_id, alice, _ = market
    stop = api.place_stop(alice, asset_id, "limit_sell", 5, "90", "stop_loss", price="89")
    amended = assert_envelope(api.amend(alice, stop["order_id"], quantity=3, price="88"), 200, True)
    assert (amended["status"], D(amended["quantity"]), D(amended["price"]), D(amended["stop_price"])) == (
        "pending", 3, 88, 90)
    assert D(api.balance(alice, asset_id)["locked"]) == 3
    market_stop = api.place_stop(alice, asset_id, "market_sell", 2, "90", "stop_loss")
    assert_error(api.amend(alice, market_stop["order_id"], price="88"), 422, "INVALID_AMEND")
    assert D(assert_envelope(api.amend(alice, market_stop["order_id"], quantity=1), 200, True)["quantity"]) == 1


# ---- cancel-all --------------------------------------------------------------


def test_cancel_all_of_one_asset_then_of_all_releases_every_hold(api, market):
    asset_id, alice, _ = market
    other = api.new_asset()
    api.deposit(alice, other, 10)
    mine = [api.place(alice, asset_id, "limit_buy", 1, "80")["order_id"],
            api.place(alice, asset_id, "limit_sell", 2, "120")["order_id"],
            api.place_stop(alice, asset_id, "limit_sell", 1, "90", "stop_loss", price="89")["order_id"]]
    elsewhere = api.place(alice, other, "limit_sell", 3, "50")["order_id"]
    data = assert_envelope(api.cancel_all(alice, asset_id), 200, True)
    assert data["count"] == 3 and sorted(order["order_id"] for order in data["cancelled"]) == sorted(mine)
    assert all(check_order(order)["reason"] == "user_cancelled" for order in data["cancelled"])
    assert D(api.balance(alice, asset_id)["locked"]) == 0 and D(api.balance(alice, "USD")["locked"]) == 0
    assert D(api.balance(alice, other)["locked"]) == 3
    data = assert_envelope(api.cancel_all(alice), 200, True)
    assert [order["order_id"] for order in data["cancelled"]] == [elsewhere]
    assert assert_envelope(api.cancel_all(alice), 200, True) == {"cancelled": [], "count": 0}
    assert_error(api.cancel_all(alice, "NOSUCH"), 404, "ASSET_NOT_FOUND")


# ---- across a kill -9 ----------------------------------------------------------


def test_waiting_stop_survives_kill_and_triggers_once_after(service_factory):
    from tests.e2e.api import Api

    service = service_factory()
    service.start()
    api = Api(service.base_url, service.admin_token)
    try:
        asset_id = api.new_asset()
        alice = api.new_user(usd="10000", assets={asset_id: 100})
        bob = api.new_user(usd="10000", assets={asset_id: 100})
        trade(api, alice, bob, asset_id, "100")
        stop = api.place_stop(alice, asset_id, "limit_sell", 2, "99", "stop_loss", price="98")
        moved = api.place(bob, asset_id, "limit_buy", 5, "90")
        assert_envelope(api.amend(bob, moved["order_id"], price="98", quantity=4), 200, True)
        service.kill_group()
        service.start()
        assert api.order(alice, stop["order_id"])["status"] == "pending"
        assert D(api.order(bob, moved["order_id"])["price"]) == 98
        trade(api, bob, alice, asset_id, "99")  # triggers the stop: it sells 2 to bob's bid at 98
        order = api.settled_order(alice, stop["order_id"], 2)
        assert order["status"] == "completed"
        service.kill_group()
        service.start()
        assert api.order(alice, stop["order_id"]) == order
        assert D(api.order(bob, moved["order_id"])["filled_quantity"]) == 2
        fills = api.transactions(alice, asset_id)["transactions"]
        assert sum(1 for item in fills if item["order_id"] == stop["order_id"]) == 1
    finally:
        api.close()


def test_openapi_documents_stop_fields_amend_and_cancel_all_with_their_error_codes(api):
    document = api.http.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert {"stop_price", "stop_kind", "triggered_at"} <= set(schemas["OrderData"]["required"])
    assert {"stop_price", "stop_kind"} <= set(schemas["LimitOrderRequest"]["properties"])
    assert set(schemas["OrderAmendRequest"]["properties"]) == {"quantity", "price"}

    def codes(operation: dict, status: str) -> set[str]:
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
        return set(schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"])

    amend = document["paths"]["/api/v1/orders/{order_id}"]["patch"]
    assert {"INVALID_AMEND", "INVALID_TICK_SIZE", "INSUFFICIENT_BALANCE", "POST_ONLY_WOULD_MATCH"} <= codes(amend, "422")
    assert codes(amend, "404") == {"ORDER_NOT_FOUND"} and codes(amend, "409") == {"ORDER_NOT_OPEN"}
    cancel_all = document["paths"]["/api/v1/orders"]["delete"]
    assert "ASSET_NOT_FOUND" in codes(cancel_all, "404")
    assert "STOP_WOULD_TRIGGER" in codes(document["paths"]["/api/v1/orders"]["post"], "422")
