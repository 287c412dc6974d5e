"""Accounts with stops and amends: holds taken, kept, re-sized and given back exactly."""

from __future__ import annotations

import pytest

from engine import USD, Accounts, OrderStatus, OrderType, RejectReason, TimeInForce, state_digest
from engine.queries import audit
from tests.engine.test_accounts import USD_UNIT, Market


class StopMarket(Market):
    """`Market` with stop orders and amends, wired as the actors do."""

    def place_stop(self, username, order_type, quantity, stop_price, stop_kind, price=None, time_in_force=None):
        order_type = OrderType(order_type)
        tif = TimeInForce(time_in_force or ("ioc" if order_type.is_market else "gtc"))
        order_id = self.next_order_id
        self.next_order_id += 1
        placed = self.accounts.place_order(order_id, username, "X", order_type, tif, False, quantity, price,
                                           None, None, 2, stop_price, stop_kind)
        if isinstance(placed, RejectReason):
            return placed
        self.record(placed)
        result = self.book.submit_stop(order_id, username, order_type.side.value, stop_kind, stop_price, quantity,
                                       price=price, time_in_force=tif.value, timestamp=3)
        self.settle(result.all_events)
        return self.order(order_id)

    def amend(self, username, order_id, quantity=None, price=None):
        amend_id = self.next_order_id
        self.next_order_id += 1
        requested = self.accounts.request_amend(username, order_id, amend_id, quantity, price, 5)
        if isinstance(requested, RejectReason):
            return requested
        self.record(requested)
        order = self.accounts.orders[order_id]
        events = self.book.amend(amend_id, order_id, username, order.quantity - requested[0].quantity,
                                 requested[0].price, post_only=order.post_only, timestamp=6)
        self.settle(events)
        return self.order(order_id)

    def check(self):
        report = audit(self.accounts)
        assert report["problems"] == []
        rebuilt = Accounts()
        for event in self.events:
            rebuilt.apply(event)
        assert state_digest(rebuilt.to_state()) == state_digest(self.accounts.to_state())


@pytest.fixture
def market() -> StopMarket:
    market = StopMarket()
    market.fund("a", usd=1000, lots=100)
    market.fund("b", usd=1000, lots=100)
    market.place("a", "limit_sell", 1, price=10_000)
    market.place("b", "limit_buy", 1, price=10_000)  # last price 100.00
    return market


def test_stop_limit_buy_holds_its_limit_notional_while_waiting_and_gives_back_the_improvement(market):
    stop = market.place_stop("a", "limit_buy", 5, 10_500, "stop_loss", price=11_000)
    assert (stop.status, stop.stop_waiting, stop.reserved) == (OrderStatus.PENDING, True, 550 * USD_UNIT)
    assert market.accounts.balance("a", USD).held == 550 * USD_UNIT
    market.place("b", "limit_sell", 10, price=10_600)
    market.place("b", "limit_sell", 1, price=10_500)
    market.place("a", "limit_buy", 1, price=10_500)  # trades at 105.00: the stop triggers, buys at 106.00
    stop = market.order(stop.order_id)
    assert (stop.status, stop.filled_quantity, stop.triggered_at) == (OrderStatus.COMPLETED, 5, 3)
    assert stop.total_amount == 530 * USD_UNIT and market.accounts.balance("a", USD).held == 0
    market.check()


def test_cancelled_stop_releases_its_hold(market):
    stop = market.place_stop("a", "market_sell", 7, 9_000, "stop_loss")
    assert market.accounts.balance("a", "X").held == 7
    market.cancel(stop.order_id)
    assert (stop.status, stop.reason.value) == (OrderStatus.CANCELLED, "user_cancelled")
    assert market.accounts.balance("a", "X").held == 0
    market.check()


def test_stop_refusals_hold_nothing(market):
    before = market.accounts.to_state()
    assert market.place_stop("a", "market_buy", 1, 11_000, "stop_loss") is RejectReason.INVALID_ORDER
    assert market.place_stop("a", "limit_buy", 1, 11_000, None, price=1) is RejectReason.INVALID_ORDER
    assert market.place_stop("a", "limit_buy", 1, 11_000, "stop_loss", price=1,
                             time_in_force="fok") is RejectReason.INVALID_ORDER
    assert market.place_stop("a", "limit_buy", 10**9, 11_000, "stop_loss", price=10**6) is \
        RejectReason.INSUFFICIENT_BALANCE
    assert market.accounts.to_state() == before


def test_amend_quantity_shrinks_a_sell_hold_and_a_buy_hold(market):
    sell = market.place("a", "limit_sell", 10, price=12_000)
    buy = market.place("b", "limit_buy", 10, price=9_000)
    market.amend("a", sell.order_id, quantity=4)
    market.amend("b", buy.order_id, quantity=3)
    assert (sell.quantity, sell.reserved, market.accounts.balance("a", "X").held) == (4, 4, 4)
    assert (buy.quantity, buy.reserved) == (3, 270 * USD_UNIT)
    market.check()


def test_amend_price_up_holds_the_difference_first_and_down_releases_it(market):
    buy = market.place("a", "limit_buy", 10, price=9_000)  # 900 held of 1,100 (1,000 + 100 sold)
    assert market.amend("a", buy.order_id, price=11_500) is RejectReason.INSUFFICIENT_BALANCE
    market.amend("a", buy.order_id, price=9_500)
    assert (buy.price, buy.reserved, market.accounts.balance("a", USD).available) == (
        9_500, 950 * USD_UNIT, 150 * USD_UNIT)
    market.amend("a", buy.order_id, price=8_000, quantity=5)
    assert (buy.reserved, market.accounts.balance("a", USD).available) == (400 * USD_UNIT, 700 * USD_UNIT)
    market.amend("a", buy.order_id, price=22_000)  # all of it: 1,100
    assert market.accounts.balance("a", USD)[:2] == (0, 1_100 * USD_UNIT)
    market.check()


def test_amend_checks(market):
    buy = market.place("b", "limit_buy", 10, price=9_000)
    market.place("a", "market_sell", 2)
    assert buy.filled_quantity == 2
    for quantity, price in ((None, None), (2, None), (1, None), (11, None), (10, 9_000), (None, 0)):
        assert market.amend("b", buy.order_id, quantity, price) in (RejectReason.INVALID_AMEND,
                                                                    RejectReason.INVALID_PRICE)
    assert market.amend("a", buy.order_id, 5) is RejectReason.ORDER_NOT_FOUND
    market.check()


def test_refused_or_aborted_amend_gives_back_its_extra_hold(market):
    buy = market.place("b", "limit_buy", 2, price=9_000)
    requested = market.accounts.request_amend("b", buy.order_id, 99, None, 9_500, 5)
    market.record(requested)
    assert buy.reserved == 190 * USD_UNIT and market.accounts.amends
    market.record(market.accounts.abort_amends(7))
    assert buy.reserved == 180 * USD_UNIT and not market.accounts.amends
    assert market.accounts.balance("b", USD).held == 180 * USD_UNIT
    market.check()
