import pytest

from engine import (
    USD, Accounts, AssetSpec, OrderBook, OrderStatus, OrderType, RejectReason, TimeInForce,
    state_digest,
)

SPEC = AssetSpec.create("X", "0.01", "1")  # 1 tick × 1 lot = 0.01 USD = 1_000_000 money units
USD_UNIT = 10**8


class Market:
    """One shard's accounts and one book wired together as the actors will do it."""

    def __init__(self) -> None:
        self.accounts = Accounts()
        self.book = OrderBook(SPEC)
        self.events: list = []
        self.settlement_sequence = 0
        self.next_order_id = 1
        self.closed: dict = {}  # the history the accounts hand over: closed orders by id
        self.transactions: list = []
        self.record(self.accounts.list_asset(SPEC))

    def record(self, events):
        assert not isinstance(events, RejectReason), events
        self.events.extend(events)
        closed, transactions = self.accounts.take_history()
        self.closed.update((order.order_id, order) for order in closed)
        self.transactions.extend(transactions)
        return events

    def order(self, order_id):
        """An order, open (in the accounts) or closed (handed over as history)."""
        return self.accounts.orders.get(order_id) or self.closed[order_id]

    def fund(self, username, usd=0, lots=0):
        if usd:
            self.record(self.accounts.deposit(username, USD, usd * USD_UNIT, 1))
        if lots:
            self.record(self.accounts.deposit(username, "X", lots, 1))

    def place(self, username, order_type, quantity, price=None, time_in_force=None, **extra):
        order_type = OrderType(order_type)
        tif = TimeInForce(time_in_force or ("ioc" if order_type.is_market else "gtc"))
        order_id = self.next_order_id
        self.next_order_id += 1
        placed = self.accounts.place_order(order_id, username, "X", order_type, tif,
                                           extra.get("post_only", False), quantity, price,
                                           extra.get("client_order_id"), None, 2)
        if isinstance(placed, RejectReason):
            return placed
        self.record(placed)
        budget = placed[1].amount if order_type is OrderType.MARKET_BUY else None
        result = self.book.submit(order_id, username, order_type.side.value, quantity, price=price,
                                  time_in_force=tif.value, post_only=extra.get("post_only", False),
                                  budget=budget, timestamp=3)
        self.settle(result.all_events)  # with the stops it triggered
        return self.order(order_id)

    def cancel(self, order_id):
        self.settle([self.book.cancel(order_id, timestamp=4)])

    def settle(self, book_events):
        self.settlement_sequence += 1
        self.record(self.accounts.settle("X", self.settlement_sequence, tuple(book_events)))


@pytest.fixture
def market() -> Market:
    return Market()


def test_limit_buy_holds_price_times_quantity(market):
    market.fund("b", usd=1000)
    order = market.place("b", "limit_buy", 10, price=5000)  # 10 lots at 50.00
    assert order.status is OrderStatus.CONFIRMED
    assert market.accounts.balance("b", USD)[:2] == (500 * USD_UNIT, 500 * USD_UNIT)
    assert order.reserved == 500 * USD_UNIT


def test_limit_buy_without_enough_usd_is_rejected_and_holds_nothing(market):
    market.fund("b", usd=10)
    assert market.place("b", "limit_buy", 10, price=5000) is RejectReason.INSUFFICIENT_BALANCE
    assert market.accounts.balance("b", USD)[:2] == (10 * USD_UNIT, 0)
    assert market.accounts.orders == {}


def test_sell_without_enough_asset_is_rejected(market):
    market.fund("a", lots=3)
    assert market.place("a", "limit_sell", 4, price=100) is RejectReason.INSUFFICIENT_BALANCE
    assert market.place("a", "market_sell", 4) is RejectReason.INSUFFICIENT_BALANCE


def test_market_buy_with_no_usd_is_rejected(market):
    assert market.place("b", "market_buy", 1) is RejectReason.INSUFFICIENT_BALANCE


def test_trade_settles_both_accounts_and_releases_price_improvement(market):
    market.fund("a", lots=10)
    market.fund("b", usd=1000)
    maker = market.place("a", "limit_sell", 10, price=4000)
    taker = market.place("b", "limit_buy", 10, price=5000)
    assert taker.status is OrderStatus.COMPLETED and maker.status is OrderStatus.COMPLETED
    assert market.accounts.balance("b", USD)[:2] == (600 * USD_UNIT, 0)  # paid 400, not 500
    assert market.accounts.balance("b", "X")[:2] == (10, 0)
    assert market.accounts.balance("a", USD)[:2] == (400 * USD_UNIT, 0)
    assert market.accounts.balance("a", "X")[:2] == (0, 0)
    assert taker.total_amount == 400 * USD_UNIT and taker.reserved == 0


def test_partial_fill_keeps_hold_for_the_rest(market):
    market.fund("a", lots=4)
    market.fund("b", usd=1000)
    market.place("a", "limit_sell", 4, price=5000)
    taker = market.place("b", "limit_buy", 10, price=5000)
    assert (taker.status, taker.filled_quantity, taker.remaining_quantity) == (OrderStatus.PROCESSING, 4, 6)
    assert market.accounts.balance("b", USD)[:2] == (500 * USD_UNIT, 300 * USD_UNIT)


def test_cancel_partially_filled_order_releases_remaining_hold(market):
    market.fund("a", lots=4)
    market.fund("b", usd=1000)
    market.place("a", "limit_sell", 4, price=5000)
    taker = market.place("b", "limit_buy", 10, price=5000)
    market.cancel(taker.order_id)
    assert (taker.status, taker.reason.value) == (OrderStatus.CANCELLED, "user_cancelled")
    assert market.accounts.balance("b", USD)[:2] == (800 * USD_UNIT, 0)
    assert taker.filled_quantity == 4 and taker.remaining_quantity == 6


def test_market_buy_holds_all_usd_then_releases_unspent_budget(market):
    market.fund("a", lots=3)
    market.fund("b", usd=1000)
    market.place("a", "limit_sell", 3, price=10000)
    taker = market.place("b", "market_buy", 5)
    assert (taker.status, taker.reason.value, taker.filled_quantity) == (OrderStatus.CANCELLED, "no_liquidity", 3)
    assert market.accounts.balance("b", USD)[:2] == (700 * USD_UNIT, 0)
    assert market.accounts.balance("b", "X")[:2] == (3, 0)


def test_market_buy_out_of_budget_is_cancelled_insufficient_funds(market):
    market.fund("a", lots=10)
    market.fund("b", usd=250)
    market.place("a", "limit_sell", 10, price=10000)  # 100 USD per lot
    taker = market.place("b", "market_buy", 5)
    assert (taker.filled_quantity, taker.reason.value) == (2, "insufficient_funds")
    assert market.accounts.balance("b", USD)[:2] == (50 * USD_UNIT, 0)


def test_withdraw_beyond_available_is_rejected_and_held_is_untouchable(market):
    market.fund("b", usd=100)
    market.place("b", "limit_buy", 1, price=6000)
    assert market.accounts.withdraw("b", USD, 41 * USD_UNIT, 5) is RejectReason.INSUFFICIENT_BALANCE
    assert market.record(market.accounts.withdraw("b", USD, 40 * USD_UNIT, 5))
    assert market.accounts.balance("b", USD)[:2] == (0, 60 * USD_UNIT)


def test_deposit_of_unknown_asset_or_nonpositive_amount_is_rejected(market):
    assert market.accounts.deposit("b", "NOPE", 1, 1) is RejectReason.UNKNOWN_ASSET
    assert market.accounts.deposit("b", USD, 0, 1) is RejectReason.INVALID_AMOUNT


def test_duplicate_client_order_id_is_rejected_and_earlier_order_found(market):
    market.fund("b", usd=1000)
    first = market.place("b", "limit_buy", 1, price=100, client_order_id="c-1")
    assert market.place("b", "limit_buy", 1, price=100, client_order_id="c-1") is RejectReason.DUPLICATE_CLIENT_ORDER_ID
    assert market.accounts.order_by_client_id("b", "c-1") is first


def test_user_order_of_another_user_is_not_found(market):
    market.fund("b", usd=1000)
    order = market.place("b", "limit_buy", 1, price=100)
    assert market.accounts.user_order("b", order.order_id) is order
    assert market.accounts.user_order("a", order.order_id) is None


def test_settlement_replayed_or_skipped_is_refused_without_change(market):
    market.fund("b", usd=1000)
    market.place("b", "limit_buy", 1, price=100)
    before = state_digest(market.accounts.to_state())
    assert market.accounts.settle("X", 1, ()) is RejectReason.SETTLEMENT_ALREADY_APPLIED
    assert market.accounts.settle("X", 3, ()) is RejectReason.SETTLEMENT_OUT_OF_ORDER
    assert state_digest(market.accounts.to_state()) == before


def test_abort_pending_order_fails_it_and_releases_hold(market):
    market.fund("b", usd=1000)
    placed = market.accounts.place_order(99, "b", "X", OrderType.LIMIT_BUY, TimeInForce.GTC, False,
                                         10, 5000, None, None, 2)
    market.record(placed)
    market.record(market.accounts.abort_order(99, 9))
    order = market.order(99)
    assert 99 not in market.accounts.orders  # closed: history, not hot state
    assert (order.status, order.reason.value) == (OrderStatus.FAILED, "recovery_aborted")
    assert market.accounts.balance("b", USD)[:2] == (1000 * USD_UNIT, 0)
    # Refused again, and changes nothing: a closed order has left the hot state.
    assert market.accounts.abort_order(99, 9) is RejectReason.ORDER_NOT_FOUND


def test_each_fill_records_one_transaction_per_side(market):
    market.fund("a", lots=5)
    market.fund("b", usd=1000)
    market.place("a", "limit_sell", 5, price=100)
    market.place("b", "limit_buy", 5, price=100)
    (buy,) = [t for t in market.transactions if t.username == "b"]
    (sell,) = [t for t in market.transactions if t.username == "a"]
    assert (buy.transaction_type, buy.quantity, buy.total_amount) == ("BUY", 5, 5 * USD_UNIT)
    assert (sell.transaction_type, sell.transaction_id) == ("SELL", "X-1-S")


def test_replaying_events_rebuilds_identical_accounts(market):
    market.fund("a", usd=500, lots=20)
    market.fund("b", usd=1000, lots=5)
    market.place("a", "limit_sell", 8, price=9000)
    market.place("b", "limit_buy", 3, price=9500)
    market.place("b", "market_buy", 10)
    order = market.place("b", "limit_buy", 2, price=8000)
    market.cancel(order.order_id)
    market.place("a", "limit_buy", 1, price=100)
    rebuilt = Accounts()
    for event in market.events:
        rebuilt.apply(event)
    assert rebuilt.to_state() == market.accounts.to_state()
    closed, transactions = rebuilt.take_history()
    assert {order.order_id: order.view() for order in closed} == {
        order_id: order.view() for order_id, order in market.closed.items()}
    assert transactions == market.transactions
    assert Accounts.from_state(market.accounts.to_state()).to_state() == market.accounts.to_state()


def test_a_hold_carried_by_the_book_comes_back_once_when_lost_and_is_ignored_when_kept(market):
    from engine import EngineError, OrderHeld, encode_event

    market.fund("a", lots=10)
    market.fund("b", usd=1000)
    market.place("a", "limit_sell", 10, price=4000)
    placed = market.accounts.place_order(7, "b", "X", OrderType.LIMIT_BUY, TimeInForce.GTC, False,
                                         4, 5000, "c7", None, 2)
    carried = OrderHeld(7, "b", [encode_event(event) for event in placed])
    fills = market.book.submit(7, "b", "buy", 4, price=5000, time_in_force="gtc", timestamp=3).all_events
    kept = Accounts.from_state(market.accounts.to_state())  # this shard journaled the hold
    lost = Accounts()
    for event in market.events:  # the journal without order 7's hold
        lost.apply(event)
    assert 7 not in lost.orders and lost.balance("b", USD)[:2] == (1000 * USD_UNIT, 0)
    sequence = market.settlement_sequence + 1
    for accounts in (kept, lost):
        accounts.settle("X", sequence, (carried, *fills))
        assert accounts.balance("b", USD)[:2] == ((1000 - 160) * USD_UNIT, 0)  # paid 4 × 40.00, once
        assert accounts.balance("b", "X")[:2] == (4, 0)
        (closed,) = [order for order in accounts.take_history()[0] if order.order_id == 7]
        assert (closed.status, closed.client_order_id, closed.filled_quantity) == (OrderStatus.COMPLETED, "c7", 4)
    other = Accounts()
    for event in market.events:
        other.apply(event)
    with pytest.raises(EngineError):  # a carried hold of another order than its own
        other.settle("X", sequence, (OrderHeld(9, "b", [encode_event(placed[1])]),))
