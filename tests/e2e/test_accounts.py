"""Balances, transactions and the portfolio: holds, fills, current prices and their arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.e2e.api import D, assert_error, eventually, parse_time

BALANCE_FIELDS = {"username", "asset_id", "quantity", "available", "locked", "current_price", "market_value",
                  "last_updated"}
TRANSACTION_FIELDS = {"transaction_id", "username", "asset_id", "transaction_type", "quantity", "price",
                      "total_amount", "order_id", "status", "timestamp"}


@pytest.fixture
def asset_id(api):
    return api.new_asset(tick_size="0.01", lot_size="0.5")


def test_balance_answers_available_locked_and_market_value(api, asset_id):
    user = api.new_user(usd="1000", assets={asset_id: "10"})
    api.place(user, asset_id, "limit_sell", "2.5", "40")
    api.place(user, asset_id, "limit_buy", "1", "30")  # bid 30, ask 40: mid 35
    data = api.balance(user, asset_id)
    assert BALANCE_FIELDS <= data.keys()
    assert data["username"] == user.username and data["asset_id"] == asset_id
    assert (D(data["quantity"]), D(data["available"]), D(data["locked"])) == (10, Decimal("7.5"), Decimal("2.5"))
    assert D(data["current_price"]) == 35 and D(data["market_value"]) == 350
    usd = api.balance(user, "USD")
    assert (D(usd["quantity"]), D(usd["available"]), D(usd["locked"])) == (1000, 970, 30)
    assert D(usd["current_price"]) == 1 and D(usd["market_value"]) == 1000


def test_balance_of_asset_never_held_answers_zeros(api, asset_id):
    user = api.new_user(usd="5")
    data = api.balance(user, asset_id)
    assert (D(data["quantity"]), D(data["available"]), D(data["locked"]), D(data["market_value"])) == (0, 0, 0, 0)


def test_balance_of_unlisted_asset_answers_404_asset_not_found(api):
    user = api.new_user(usd="5")
    assert_error(api.get("/api/v1/balances/NOSUCH4", user), 404, "ASSET_NOT_FOUND")


def test_balances_list_every_held_asset_with_usd_at_price_one(api, asset_id):
    other_asset = api.new_asset()
    user = api.new_user(usd="100", assets={asset_id: "4", other_asset: 3})
    maker = api.new_user(usd="1000", assets={other_asset: 5})
    api.place(maker, other_asset, "limit_sell", 1, "7")
    api.place(user, other_asset, "limit_buy", 1, "7")  # last trade of other_asset: 7
    listing = api.balances(user)
    assert listing["username"] == user.username
    rows = {row["asset_id"]: row for row in listing["asset_balances"]}
    assert rows.keys() == {"USD", asset_id, other_asset}
    assert listing["total_count"] == 3 and listing["has_more"] is False
    assert D(rows["USD"]["current_price"]) == 1 and D(rows["USD"]["quantity"]) == 93
    assert D(rows[other_asset]["quantity"]) == 4 and D(rows[other_asset]["market_value"]) == 28
    assert D(rows[asset_id]["current_price"]) == 0 and D(rows[asset_id]["market_value"]) == 0
    total = sum(D(row["market_value"]) for row in rows.values())
    assert D(listing["total_market_value"]) == total == 93 + 28
    for row in rows.values():
        assert D(row["quantity"]) == D(row["available"]) + D(row["locked"])
        assert D(row["market_value"]) == D(row["quantity"]) * D(row["current_price"])


def test_balances_list_pages_with_limit_and_offset(api, asset_id):
    other_asset = api.new_asset()
    user = api.new_user(usd="100", assets={asset_id: "4", other_asset: 3})
    first = api.balances(user, limit=2, offset=0)
    assert len(first["asset_balances"]) == 2 and first["total_count"] == 3 and first["has_more"] is True
    rest = api.balances(user, limit=2, offset=2)
    assert len(rest["asset_balances"]) == 1 and rest["has_more"] is False
    seen = {row["asset_id"] for row in first["asset_balances"] + rest["asset_balances"]}
    assert seen == {"USD", asset_id, other_asset}


@pytest.mark.parametrize("params", [{"limit": 0}, {"offset": -1}, {"limit": "x"}])
def test_balances_list_with_bad_paging_answers_422(api, params):
    user = api.new_user(usd="1")
    assert_error(api.get("/api/v1/balances", user, params=params), 422)


def test_current_price_follows_last_trade_then_mid_then_one_side_then_zero(api):
    asset_id = api.new_asset(tick_size="1", lot_size="1")
    holder = api.new_user(usd="10000", assets={asset_id: 10})
    other = api.new_user(usd="10000", assets={asset_id: 10})

    def price():
        return D(api.balance(holder, asset_id)["current_price"])

    assert price() == 0
    api.place(other, asset_id, "limit_buy", 1, "100")
    assert price() == 100  # only a bid
    ask = api.place(other, asset_id, "limit_sell", 1, "103")
    assert price() == Decimal("101.5")  # mid of 100 and 103
    api.cancel(other, ask["order_id"])
    api.place(other, asset_id, "limit_buy", 1, "90")
    bids_only = price()
    assert bids_only == 100
    api.place(holder, asset_id, "limit_sell", 1, "100")  # trades at 100
    api.place(other, asset_id, "limit_sell", 1, "120")
    api.place(other, asset_id, "limit_buy", 1, "110")  # bid 110, ask 120, last trade 100
    assert price() == 100
    api.place(holder, asset_id, "limit_sell", 1, "105")  # trades at the bid, 110
    assert price() == 110
    assert D(api.asset(asset_id)["last_price"]) == 110


def test_current_price_with_only_an_ask_is_the_ask(api):
    asset_id = api.new_asset()
    holder = api.new_user(assets={asset_id: 2})
    api.place(holder, asset_id, "limit_sell", 1, "42.5")
    data = api.balance(holder, asset_id)
    assert D(data["current_price"]) == Decimal("42.5") and D(data["market_value"]) == 85


def test_transactions_record_each_fill_for_each_side(api, asset_id):
    buyer, seller = api.new_user(usd="10000"), api.new_user(assets={asset_id: 10})
    sell_low = api.place(seller, asset_id, "limit_sell", "1.5", "20")
    sell_high = api.place(seller, asset_id, "limit_sell", "2", "25")
    taker = api.place(buyer, asset_id, "limit_buy", "3", "25")
    bought = api.transactions(buyer, asset_id)
    assert bought["username"] == buyer.username and bought["asset_id"] == asset_id
    assert bought["total_count"] == 2 and bought["has_more"] is False
    newest, oldest = bought["transactions"]
    for row in (newest, oldest):
        assert TRANSACTION_FIELDS <= row.keys()
        assert row["transaction_type"] == "BUY" and row["status"] == "completed"
        assert row["order_id"] == taker["order_id"] and row["username"] == buyer.username
        assert D(row["total_amount"]) == D(row["price"]) * D(row["quantity"])
        parse_time(row["timestamp"])
    assert (D(oldest["price"]), D(oldest["quantity"])) == (20, Decimal("1.5"))
    assert (D(newest["price"]), D(newest["quantity"])) == (25, Decimal("1.5"))
    assert newest["transaction_id"] != oldest["transaction_id"]
    sold = eventually(lambda: api.transactions(seller, asset_id), lambda page: page["total_count"] == 2,
                      what="the seller's two fills")
    assert {row["transaction_type"] for row in sold["transactions"]} == {"SELL"}
    assert [row["order_id"] for row in sold["transactions"]] == [sell_high["order_id"], sell_low["order_id"]]
    assert sum(D(row["total_amount"]) for row in sold["transactions"]) == D(taker["total_amount"]) == \
        Decimal("67.5")


def test_transactions_filter_by_type_and_page(api, asset_id):
    trader, other = api.new_user(usd="10000", assets={asset_id: 10}), api.new_user(usd="10000",
                                                                                  assets={asset_id: 10})
    for price in ("10", "11", "12"):
        api.place(other, asset_id, "limit_sell", 1, price)
        api.place(trader, asset_id, "market_buy", 1)
    api.place(other, asset_id, "limit_buy", 1, "9")
    api.place(trader, asset_id, "market_sell", 1)
    assert api.transactions(trader, asset_id)["total_count"] == 4
    buys = api.transactions(trader, asset_id, transaction_type="BUY")
    assert buys["total_count"] == 3 and [D(row["price"]) for row in buys["transactions"]] == [12, 11, 10]
    sells = api.transactions(trader, asset_id, transaction_type="SELL")
    assert sells["total_count"] == 1 and D(sells["transactions"][0]["price"]) == 9
    page = api.transactions(trader, asset_id, limit=2, offset=1)
    assert page["total_count"] == 4 and page["has_more"] is True
    assert [D(row["price"]) for row in page["transactions"]] == [12, 11]


def test_transactions_filter_by_dates(api, asset_id):
    trader, other = api.new_user(usd="10000"), api.new_user(assets={asset_id: 10})
    for price in ("10", "11"):
        api.place(other, asset_id, "limit_sell", 1, price)
        api.place(trader, asset_id, "market_buy", 1)
    rows = api.transactions(trader, asset_id)["transactions"]
    newest, oldest = (parse_time(row["timestamp"]) for row in rows)
    between = oldest + (newest - oldest) / 2
    assert oldest < between < newest
    since = api.transactions(trader, asset_id, start_date=between.isoformat())
    assert [D(row["price"]) for row in since["transactions"]] == [11]
    until = api.transactions(trader, asset_id, end_date=between.isoformat())
    assert [D(row["price"]) for row in until["transactions"]] == [10]


def test_transactions_of_asset_never_traded_answer_empty(api, asset_id):
    user = api.new_user(usd="1")
    page = api.transactions(user, asset_id)
    assert page["transactions"] == [] and page["total_count"] == 0 and page["has_more"] is False


def test_portfolio_adds_held_usd_and_asset_values(api):
    asset_id = api.new_asset(tick_size="0.01", lot_size="1")
    second_asset = api.new_asset(tick_size="0.01", lot_size="1")
    user = api.new_user(usd="10000", assets={second_asset: 5})
    seller = api.new_user(assets={asset_id: 10, second_asset: 5})
    api.place(seller, asset_id, "limit_sell", 2, "100")
    api.place(user, asset_id, "limit_buy", 2, "100")  # last trade 100, 200 USD spent
    api.place(user, asset_id, "limit_buy", 3, "50")  # 150 USD held
    api.place(user, second_asset, "limit_sell", 1, "80")  # held, still counted; only ask: price 80
    portfolio = api.portfolio(user)
    assert portfolio["username"] == user.username
    assert D(portfolio["usd_balance"]) == 9800
    rows = {row["asset_id"]: row for row in portfolio["assets"]}
    assert rows.keys() == {asset_id, second_asset} and portfolio["asset_count"] == 2
    first, second = rows[asset_id], rows[second_asset]
    assert {"asset_id", "quantity", "current_price", "market_value", "percentage", "last_updated"} <= first.keys()
    assert (D(first["quantity"]), D(first["current_price"]), D(first["market_value"])) == (2, 100, 200)
    assert (D(second["quantity"]), D(second["current_price"]), D(second["market_value"])) == (5, 80, 400)
    assert D(portfolio["total_asset_value"]) == 600
    assert D(portfolio["total_portfolio_value"]) == 10400
    assert abs(D(first["percentage"]) - Decimal(200) * 100 / 10400) < Decimal("0.01")
    assert abs(D(second["percentage"]) - Decimal(400) * 100 / 10400) < Decimal("0.01")
    parse_time(portfolio["last_updated"])


def test_portfolio_of_user_with_only_usd_lists_no_assets(api):
    user = api.new_user(usd="123.45")
    portfolio = api.portfolio(user)
    assert portfolio["assets"] == [] and portfolio["asset_count"] == 0
    assert D(portfolio["usd_balance"]) == D(portfolio["total_portfolio_value"]) == Decimal("123.45")
    assert D(portfolio["total_asset_value"]) == 0


def test_portfolio_percentages_are_shares_of_the_total(api):
    asset_id = api.new_asset(tick_size="1", lot_size="1")
    user = api.new_user(usd="300", assets={asset_id: 7})
    other = api.new_user(usd="1000", assets={asset_id: 1})
    api.place(other, asset_id, "limit_sell", 1, "100")
    api.place(user, asset_id, "limit_buy", 1, "100")  # 8 at 100 = 800 of 1000
    portfolio = api.portfolio(user)
    assert D(portfolio["total_portfolio_value"]) == 1000
    (row,) = portfolio["assets"]
    assert D(row["percentage"]) == 80
    assert Decimal(0) <= D(row["percentage"]) <= Decimal(100)


def test_balances_add_up_to_deposits_minus_withdrawals_across_users(api):
    asset_id = api.new_asset(tick_size="0.01", lot_size="1")
    alice = api.new_user(usd="5000", assets={asset_id: 50})
    bob = api.new_user(usd="3000", assets={asset_id: 20})
    carol = api.new_user(usd="1000")
    users = [alice, bob, carol]
    api.place(alice, asset_id, "limit_sell", 10, "10.5")
    api.place(alice, asset_id, "limit_sell", 10, "11.25")
    assert api.place(carol, asset_id, "market_buy", 15)["status"] == "completed"
    api.place(carol, asset_id, "limit_buy", 5, "9.99")
    assert api.place(bob, asset_id, "limit_sell", 8, "9.5")["status"] == "processing"
    assert api.place(carol, asset_id, "limit_buy", 3, "11.25")["status"] == "completed"
    api.place(bob, asset_id, "limit_buy", 4, "9")
    assert api.place(alice, asset_id, "market_sell", 2)["status"] == "completed"
    open_order = api.place(alice, asset_id, "limit_buy", 4, "8")
    api.cancel(alice, open_order["order_id"])
    api.withdraw(alice, "USD", "1234.56")
    api.withdraw(bob, asset_id, "3")
    assert_error(api.admin_post("/api/v1/admin/withdrawals", {"username": carol.username, "asset_id": "USD",
                                                              "amount": "1000"}), 422, "INSUFFICIENT_BALANCE")
    assert len(api.trades(asset_id)) == 5
    expected = {"USD": Decimal(9000) - Decimal("1234.56"), asset_id: Decimal(70 - 3)}
    for held_asset, total in expected.items():
        eventually(lambda held_asset=held_asset: api.total_holdings(users, held_asset),
                   lambda found, total=total: found == total, what=f"{held_asset} adds up to {total}")
    # Once settled, nobody holds anything beyond what their open orders reserve.
    for user in users:
        open_orders = [o for o in api.orders(user, limit=100)["orders"] if o["status"] in {"confirmed", "processing"}]
        reserved_usd = sum(D(o["price"]) * D(o["remaining_quantity"]) for o in open_orders
                           if o["order_type"] == "limit_buy")
        reserved_asset = sum(D(o["remaining_quantity"]) for o in open_orders if o["order_type"] == "limit_sell")
        assert D(api.balance(user, "USD")["locked"]) == reserved_usd
        assert D(api.balance(user, asset_id)["locked"]) == reserved_asset
