"""Matching over HTTP: maker prices, time in force, post-only, self-trade and market budgets.

Each scenario checks the taker's answer, what the makers see once settled,
the book left behind and the balances with their holds.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.e2e.api import D, assert_error, levels


@pytest.fixture
def asset_id(api):
    return api.new_asset(tick_size="0.01", lot_size="1")


def test_limit_buy_sweeps_price_levels_at_maker_prices(api, asset_id):
    seller, buyer = api.new_user(assets={asset_id: 10}), api.new_user(usd="1000")
    makers = [api.place(seller, asset_id, "limit_sell", quantity, price)
              for quantity, price in ((1, "100"), (2, "101"), (3, "102"))]
    taker = api.place(buyer, asset_id, "limit_buy", 5, "102")
    assert taker["status"] == "completed" and taker["reason"] is None
    assert D(taker["filled_quantity"]) == 5 and D(taker["remaining_quantity"]) == 0
    assert D(taker["total_amount"]) == 100 + 2 * 101 + 2 * 102
    assert D(taker["average_price"]) == Decimal("101.2")
    assert D(taker["price"]) == 102  # a limit order keeps its limit price
    # The limit held 5 × 102; the better prices give the difference back.
    assert api.amounts(buyer, "USD") == (Decimal(1000 - 506), Decimal(0))
    assert api.amounts(buyer, asset_id) == (Decimal(5), Decimal(0))
    first, second, third = (api.settled_order(seller, maker["order_id"], filled)
                            for maker, filled in zip(makers, (1, 2, 2)))
    assert first["status"] == "completed" and second["status"] == "completed"
    assert third["status"] == "processing" and D(third["remaining_quantity"]) == 1
    assert D(third["total_amount"]) == 204 and D(third["average_price"]) == 102
    assert api.amounts(seller, asset_id) == (Decimal(4), Decimal(1))
    assert api.amounts(seller, "USD") == (Decimal(506), Decimal(0))
    book = api.book(asset_id)
    assert levels(book["asks"]) == [(102, 1, 1)] and book["bids"] == []
    assert [(D(t["price"]), D(t["quantity"])) for t in api.trades(asset_id)] == [(102, 2), (101, 2), (100, 1)]


def test_limit_buy_partially_filled_rests_its_remainder_as_processing(api, asset_id):
    seller, buyer = api.new_user(assets={asset_id: 10}), api.new_user(usd="1000")
    api.place(seller, asset_id, "limit_sell", 2, "50")
    taker = api.place(buyer, asset_id, "limit_buy", 5, "60")
    assert taker["status"] == "processing"
    assert (D(taker["filled_quantity"]), D(taker["remaining_quantity"])) == (2, 3)
    assert D(taker["total_amount"]) == 100 and D(taker["average_price"]) == 50
    assert api.amounts(buyer, "USD") == (Decimal(1000 - 100 - 180), Decimal(180))
    assert levels(api.book(asset_id)["bids"]) == [(60, 3, 1)]


def test_limit_sell_takes_best_bids_first_at_their_prices(api, asset_id):
    buyer, seller = api.new_user(usd="1000"), api.new_user(assets={asset_id: 10})
    low = api.place(buyer, asset_id, "limit_buy", 2, "90")
    high = api.place(buyer, asset_id, "limit_buy", 2, "95")
    taker = api.place(seller, asset_id, "limit_sell", 3, "80")
    assert taker["status"] == "completed"
    assert D(taker["total_amount"]) == 2 * 95 + 90 and D(taker["price"]) == 80
    assert api.amounts(seller, "USD") == (Decimal(280), Decimal(0))
    api.settled_order(buyer, high["order_id"], 2)
    api.settled_order(buyer, low["order_id"], 1)
    assert api.amounts(buyer, "USD") == (Decimal(1000 - 190 - 180), Decimal(90))
    assert api.amounts(buyer, asset_id) == (Decimal(3), Decimal(0))


def test_equal_prices_fill_in_time_priority(api, asset_id):
    early, late = api.new_user(assets={asset_id: 5}), api.new_user(assets={asset_id: 5})
    buyer = api.new_user(usd="1000")
    first = api.place(early, asset_id, "limit_sell", 2, "10")
    second = api.place(late, asset_id, "limit_sell", 2, "10")
    api.place(buyer, asset_id, "limit_buy", 3, "10")
    assert api.settled_order(early, first["order_id"], 2)["status"] == "completed"
    assert api.settled_order(late, second["order_id"], 1)["status"] == "processing"


def test_ioc_limit_order_cancels_its_unfilled_rest_with_ioc_expired(api, asset_id):
    seller, buyer = api.new_user(assets={asset_id: 10}), api.new_user(usd="1000")
    api.place(seller, asset_id, "limit_sell", 2, "100")
    api.place(seller, asset_id, "limit_sell", 2, "120")
    taker = api.place(buyer, asset_id, "limit_buy", 5, "110", time_in_force="ioc")
    assert taker["status"] == "cancelled" and taker["reason"] == "ioc_expired"
    assert (D(taker["filled_quantity"]), D(taker["remaining_quantity"])) == (2, 3)
    assert api.amounts(buyer, "USD") == (Decimal(800), Decimal(0))
    assert api.book(asset_id)["bids"] == []


def test_ioc_limit_order_with_nothing_to_match_is_cancelled_unfilled(api, asset_id):
    buyer = api.new_user(usd="1000")
    taker = api.place(buyer, asset_id, "limit_buy", 1, "10", time_in_force="ioc")
    assert taker["status"] == "cancelled" and taker["reason"] == "ioc_expired"
    assert D(taker["filled_quantity"]) == 0 and taker["average_price"] is None
    assert api.amounts(buyer, "USD") == (Decimal(1000), Decimal(0))


def test_fok_order_that_cannot_fill_entirely_is_cancelled_and_trades_nothing(api, asset_id):
    seller, buyer = api.new_user(assets={asset_id: 10}), api.new_user(usd="1000")
    api.place(seller, asset_id, "limit_sell", 2, "100")
    api.place(seller, asset_id, "limit_sell", 2, "130")
    taker = api.place(buyer, asset_id, "limit_buy", 3, "120", time_in_force="fok")
    assert taker["status"] == "cancelled" and taker["reason"] == "fok_unfillable"
    assert D(taker["filled_quantity"]) == 0
    assert api.amounts(buyer, "USD") == (Decimal(1000), Decimal(0))
    assert levels(api.book(asset_id)["asks"]) == [(100, 2, 1), (130, 2, 1)]
    assert api.trades(asset_id) == []


def test_fok_order_that_can_fill_entirely_completes(api, asset_id):
    seller, buyer = api.new_user(assets={asset_id: 10}), api.new_user(usd="1000")
    api.place(seller, asset_id, "limit_sell", 2, "100")
    api.place(seller, asset_id, "limit_sell", 2, "110")
    taker = api.place(buyer, asset_id, "limit_buy", 3, "110", time_in_force="fok")
    assert taker["status"] == "completed" and D(taker["total_amount"]) == 310


def test_fok_order_blocked_by_own_resting_order_is_cancelled(api, asset_id):
    other, trader = api.new_user(assets={asset_id: 10}), api.new_user(usd="1000", assets={asset_id: 10})
    api.place(other, asset_id, "limit_sell", 1, "100")
    own = api.place(trader, asset_id, "limit_sell", 5, "101")
    api.place(other, asset_id, "limit_sell", 5, "102")
    taker = api.place(trader, asset_id, "limit_buy", 3, "102", time_in_force="fok")
    assert taker["status"] == "cancelled" and taker["reason"] == "fok_unfillable"
    assert D(taker["filled_quantity"]) == 0
    assert api.order(trader, own["order_id"])["status"] == "confirmed"
    assert api.trades(asset_id) == []


def test_market_fok_order_that_cannot_fill_is_cancelled(api, asset_id):
    seller, buyer = api.new_user(assets={asset_id: 10}), api.new_user(usd="1000")
    api.place(seller, asset_id, "limit_sell", 2, "10")
    taker = api.place(buyer, asset_id, "market_buy", 3, time_in_force="fok")
    assert taker["status"] == "cancelled" and taker["reason"] == "fok_unfillable"
    assert D(taker["price"]) == 0 and taker["average_price"] is None
    assert api.amounts(buyer, "USD") == (Decimal(1000), Decimal(0))


def test_post_only_order_that_would_trade_fails_and_holds_nothing(api, asset_id):
    buyer, seller = api.new_user(usd="1000"), api.new_user(assets={asset_id: 10})
    api.place(buyer, asset_id, "limit_buy", 2, "100")
    order = api.place(seller, asset_id, "limit_sell", 1, "100", post_only=True)
    assert order["status"] == "failed" and order["reason"] == "post_only_would_match"
    assert order["post_only"] is True and D(order["filled_quantity"]) == 0
    assert api.amounts(seller, asset_id) == (Decimal(10), Decimal(0))
    assert api.book(asset_id)["asks"] == [] and api.trades(asset_id) == []


def test_post_only_order_that_would_trade_with_own_order_fails_too(api, asset_id):
    trader = api.new_user(usd="1000", assets={asset_id: 10})
    api.place(trader, asset_id, "limit_buy", 1, "100")
    order = api.place(trader, asset_id, "limit_sell", 1, "99", post_only=True)
    assert order["status"] == "failed" and order["reason"] == "post_only_would_match"


def test_post_only_order_that_does_not_cross_rests_confirmed(api, asset_id):
    buyer, seller = api.new_user(usd="1000"), api.new_user(assets={asset_id: 10})
    api.place(buyer, asset_id, "limit_buy", 2, "100")
    order = api.place(seller, asset_id, "limit_sell", 1, "100.01", post_only=True)
    assert order["status"] == "confirmed"
    assert levels(api.book(asset_id)["asks"]) == [(Decimal("100.01"), 1, 1)]


def test_order_meeting_own_resting_order_cancels_its_rest_and_keeps_the_resting_one(api, asset_id):
    trader = api.new_user(usd="1000", assets={asset_id: 10})
    resting = api.place(trader, asset_id, "limit_sell", 2, "100")
    taker = api.place(trader, asset_id, "limit_buy", 2, "100")
    assert taker["status"] == "cancelled" and taker["reason"] == "self_trade_prevented"
    assert D(taker["filled_quantity"]) == 0
    assert api.order(trader, resting["order_id"])["status"] == "confirmed"
    assert api.amounts(trader, "USD") == (Decimal(1000), Decimal(0))
    assert api.amounts(trader, asset_id) == (Decimal(8), Decimal(2))
    assert levels(api.book(asset_id)["asks"]) == [(100, 2, 1)] and api.book(asset_id)["bids"] == []


def test_self_trade_prevention_keeps_fills_made_before_the_own_order(api, asset_id):
    other, trader = api.new_user(assets={asset_id: 10}), api.new_user(usd="1000", assets={asset_id: 10})
    api.place(other, asset_id, "limit_sell", 1, "99")
    own = api.place(trader, asset_id, "limit_sell", 1, "100")
    api.place(other, asset_id, "limit_sell", 1, "101")
    taker = api.place(trader, asset_id, "limit_buy", 3, "101")
    assert taker["status"] == "cancelled" and taker["reason"] == "self_trade_prevented"
    assert (D(taker["filled_quantity"]), D(taker["remaining_quantity"])) == (1, 2)
    assert D(taker["total_amount"]) == 99
    assert api.order(trader, own["order_id"])["status"] == "confirmed"
    assert api.amounts(trader, "USD") == (Decimal(901), Decimal(0))
    assert levels(api.book(asset_id)["asks"]) == [(100, 1, 1), (101, 1, 1)]


def test_market_buy_stops_with_insufficient_funds_when_the_budget_runs_out(api, asset_id):
    seller, buyer = api.new_user(assets={asset_id: 10}), api.new_user(usd="400")
    api.place(seller, asset_id, "limit_sell", 1, "100")
    api.place(seller, asset_id, "limit_sell", 2, "300")
    taker = api.place(buyer, asset_id, "market_buy", 3)
    assert taker["status"] == "cancelled" and taker["reason"] == "insufficient_funds"
    assert (D(taker["filled_quantity"]), D(taker["remaining_quantity"])) == (2, 1)
    assert D(taker["total_amount"]) == 400
    assert D(taker["price"]) == 200 and D(taker["average_price"]) == 200
    assert api.amounts(buyer, "USD") == (Decimal(0), Decimal(0))
    assert levels(api.book(asset_id)["asks"]) == [(300, 1, 1)]


def test_market_buy_releases_unspent_budget_before_answering(api, asset_id):
    seller, buyer = api.new_user(assets={asset_id: 10}), api.new_user(usd="1000")
    api.place(seller, asset_id, "limit_sell", 1, "100")
    api.place(seller, asset_id, "limit_sell", 5, "300")
    taker = api.place(buyer, asset_id, "market_buy", 5)
    assert taker["status"] == "cancelled" and taker["reason"] == "insufficient_funds"
    assert D(taker["filled_quantity"]) == 4 and D(taker["total_amount"]) == 1000
    assert api.amounts(buyer, "USD") == (Decimal(0), Decimal(0))
    budget_left = api.new_user(usd="1000")
    partial = api.place(budget_left, asset_id, "market_buy", 2)
    assert partial["status"] == "completed" and D(partial["total_amount"]) == 600
    assert api.amounts(budget_left, "USD") == (Decimal(400), Decimal(0))


def test_market_buy_beyond_the_book_ends_with_no_liquidity(api, asset_id):
    seller, buyer = api.new_user(assets={asset_id: 10}), api.new_user(usd="10000")
    api.place(seller, asset_id, "limit_sell", 2, "100")
    api.place(seller, asset_id, "limit_sell", 2, "150")
    taker = api.place(buyer, asset_id, "market_buy", 5)
    assert taker["status"] == "cancelled" and taker["reason"] == "no_liquidity"
    assert (D(taker["filled_quantity"]), D(taker["remaining_quantity"])) == (4, 1)
    assert D(taker["total_amount"]) == 500 and D(taker["price"]) == 125 and D(taker["average_price"]) == 125
    assert api.amounts(buyer, "USD") == (Decimal(9500), Decimal(0))
    assert api.book(asset_id)["asks"] == []


def test_market_order_on_empty_side_is_cancelled_with_price_zero(api, asset_id):
    buyer = api.new_user(usd="10000")
    taker = api.place(buyer, asset_id, "market_buy", 1)
    assert taker["status"] == "cancelled" and taker["reason"] == "no_liquidity"
    assert D(taker["price"]) == 0 and taker["average_price"] is None and D(taker["total_amount"]) == 0
    assert api.amounts(buyer, "USD") == (Decimal(10000), Decimal(0))


def test_market_sell_fills_against_bids_at_their_prices(api, asset_id):
    buyer, seller = api.new_user(usd="1000"), api.new_user(assets={asset_id: 10})
    api.place(buyer, asset_id, "limit_buy", 1, "40")
    api.place(buyer, asset_id, "limit_buy", 1, "60")
    taker = api.place(seller, asset_id, "market_sell", 3)
    assert taker["status"] == "cancelled" and taker["reason"] == "no_liquidity"
    assert D(taker["filled_quantity"]) == 2 and D(taker["price"]) == 50
    assert api.amounts(seller, asset_id) == (Decimal(8), Decimal(0))
    assert api.amounts(seller, "USD") == (Decimal(100), Decimal(0))


def test_market_sell_beyond_available_asset_answers_422_insufficient_balance(api, asset_id):
    buyer, seller = api.new_user(usd="1000"), api.new_user(assets={asset_id: 2})
    api.place(buyer, asset_id, "limit_buy", 5, "10")
    assert_error(api.submit(seller, asset_id, "market_sell", 3), 422, "INSUFFICIENT_BALANCE")
    assert api.amounts(seller, asset_id) == (Decimal(2), Decimal(0))


def test_post_answers_are_never_pending(api, asset_id):
    maker, taker = api.new_user(usd="100000", assets={asset_id: 100}), api.new_user(usd="100000",
                                                                                   assets={asset_id: 100})
    statuses = set()
    for index in range(10):
        side = "limit_buy" if index % 2 else "limit_sell"
        statuses.add(api.place(maker, asset_id, side, 3, str(100 + (index % 3)))["status"])
        statuses.add(api.place(taker, asset_id, "market_buy" if index % 2 else "market_sell", 2)["status"])
    assert "pending" not in statuses
