import pytest

from engine import (
    BUY, SELL, AssetSpec, OrderBook, OrderClosed, OrderRested, RejectReason, TradeExecuted,
    state_digest,
)


@pytest.fixture
def book() -> OrderBook:
    return OrderBook(AssetSpec.create("X", "1", "1"))


def rest(book, order_id, owner, side, price, quantity):
    result = book.submit_limit(order_id, owner, side, price, quantity)
    assert result.status == "confirmed"
    return result


def test_limit_buy_crossing_two_levels_fills_at_maker_prices_best_first(book):
    rest(book, 1, "a", SELL, 101, 5)
    rest(book, 2, "a", SELL, 100, 5)
    result = book.submit_limit(3, "b", BUY, 101, 7)
    assert result.status == "completed"
    assert [(t.price, t.quantity, t.maker_order_id) for t in result.trades] == [(100, 5, 2), (101, 2, 1)]
    assert book.depth() == ([], [(101, 3, 1)])
    assert book.last_price == 101


def test_same_price_orders_fill_in_time_priority(book):
    rest(book, 1, "a", SELL, 100, 2)
    rest(book, 2, "c", SELL, 100, 2)
    result = book.submit_limit(3, "b", BUY, 100, 3)
    assert [(t.maker_order_id, t.quantity) for t in result.trades] == [(1, 2), (2, 1)]
    assert book.resting(2).remaining == 1


def test_partially_filled_gtc_limit_rests_remainder_as_processing(book):
    rest(book, 1, "a", SELL, 100, 2)
    result = book.submit_limit(2, "b", BUY, 100, 5)
    assert (result.status, result.filled_quantity) == ("processing", 2)
    assert isinstance(result.events[-1], OrderRested) and result.events[-1].quantity == 3
    assert book.best_bid() == 100 and book.best_ask() is None


def test_ioc_limit_unfilled_rest_is_cancelled_ioc_expired(book):
    rest(book, 1, "a", SELL, 100, 2)
    result = book.submit_limit(2, "b", BUY, 100, 5, time_in_force="ioc")
    assert (result.status, result.reason, result.filled_quantity) == ("cancelled", "ioc_expired", 2)
    assert book.best_bid() is None


def test_fok_that_cannot_fill_whole_quantity_is_cancelled_without_trades(book):
    rest(book, 1, "a", SELL, 100, 2)
    result = book.submit_limit(2, "b", BUY, 100, 3, time_in_force="fok")
    assert (result.status, result.reason, result.trades) == ("cancelled", "fok_unfillable", [])
    assert book.resting(1).remaining == 2


def test_fok_that_can_fill_executes_completely(book):
    rest(book, 1, "a", SELL, 100, 2)
    rest(book, 2, "c", SELL, 101, 2)
    result = book.submit_limit(3, "b", BUY, 101, 3, time_in_force="fok")
    assert (result.status, result.filled_quantity) == ("completed", 3)


def test_fok_blocked_by_own_order_before_full_quantity_is_unfillable(book):
    rest(book, 1, "a", SELL, 100, 1)
    rest(book, 2, "b", SELL, 100, 5)
    rest(book, 3, "c", SELL, 100, 5)
    result = book.submit_limit(4, "b", BUY, 100, 3, time_in_force="fok")
    assert (result.status, result.reason, result.trades) == ("cancelled", "fok_unfillable", [])


def test_post_only_that_would_trade_fails_and_changes_nothing(book):
    rest(book, 1, "a", SELL, 100, 2)
    before = state_digest(book.to_state()["asks"])
    result = book.submit_limit(2, "b", BUY, 100, 1, post_only=True)
    assert (result.status, result.reason, result.trades) == ("failed", "post_only_would_match", [])
    assert state_digest(book.to_state()["asks"]) == before


def test_post_only_that_does_not_cross_rests(book):
    rest(book, 1, "a", SELL, 100, 2)
    result = book.submit_limit(2, "b", BUY, 99, 1, post_only=True)
    assert result.status == "confirmed"


def test_self_trade_cancels_incoming_remainder_and_keeps_resting_order(book):
    rest(book, 1, "c", SELL, 100, 1)
    rest(book, 2, "b", SELL, 100, 5)
    rest(book, 3, "c", SELL, 101, 5)
    result = book.submit_limit(4, "b", BUY, 101, 4)
    assert (result.status, result.reason, result.filled_quantity) == ("cancelled", "self_trade_prevented", 1)
    assert book.resting(2).remaining == 5
    assert book.best_bid() is None


def test_market_order_without_liquidity_is_cancelled_no_liquidity(book):
    rest(book, 1, "a", SELL, 100, 2)
    result = book.submit_market(2, "b", BUY, 5)
    assert (result.status, result.reason, result.filled_quantity) == ("cancelled", "no_liquidity", 2)


def test_market_sell_fills_against_bids_best_first(book):
    rest(book, 1, "a", BUY, 99, 2)
    rest(book, 2, "a", BUY, 100, 2)
    result = book.submit_market(3, "b", SELL, 3)
    assert [(t.price, t.quantity) for t in result.trades] == [(100, 2), (99, 1)]
    assert result.status == "completed"


def test_market_buy_budget_stops_before_unaffordable_fill(book):
    spec = book.spec
    rest(book, 1, "a", SELL, 100, 2)
    rest(book, 2, "a", SELL, 150, 10)
    budget = spec.notional(100, 2) + spec.notional(150, 3) + spec.notional(149, 1)
    result = book.submit_market(3, "b", BUY, 10, budget=budget)
    assert [(t.price, t.quantity) for t in result.trades] == [(100, 2), (150, 3)]
    assert (result.status, result.reason) == ("cancelled", "insufficient_funds")


def test_market_fok_buy_with_too_small_budget_is_unfillable(book):
    rest(book, 1, "a", SELL, 100, 5)
    result = book.submit_market(2, "b", BUY, 5, time_in_force="fok", budget=book.spec.notional(100, 4))
    assert (result.status, result.reason, result.trades) == ("cancelled", "fok_unfillable", [])


def test_cancel_resting_order_removes_it_and_empty_level(book):
    rest(book, 1, "a", SELL, 100, 2)
    rest(book, 2, "a", SELL, 101, 2)
    event = book.cancel(1, timestamp=7)
    assert event == OrderClosed(1, "a", "cancelled", "user_cancelled", 7)
    assert book.best_ask() == 101 and not book.is_open(1)


def test_cancel_of_unknown_or_closed_order_is_rejected(book):
    assert book.cancel(42) is RejectReason.ORDER_NOT_OPEN
    rest(book, 1, "a", SELL, 100, 2)
    book.submit_limit(2, "b", BUY, 100, 2)
    assert book.cancel(1) is RejectReason.ORDER_NOT_OPEN


def test_cancelled_orders_are_skipped_by_matching(book):
    for order_id in range(1, 6):
        rest(book, order_id, "a", SELL, 100, 1)
    for order_id in (1, 2, 4):
        book.cancel(order_id)
    result = book.submit_limit(9, "b", BUY, 100, 5)
    assert [t.maker_order_id for t in result.trades] == [3, 5]
    assert result.status == "processing"


def test_many_cancels_behind_a_live_order_are_compacted(book):
    rest(book, 1, "a", SELL, 100, 1)
    for order_id in range(2, 500):
        rest(book, order_id, "a", SELL, 100, 1)
        book.cancel(order_id)
    level = book._asks[100]
    assert level.count == 1 and len(level.orders) < 100


def test_depth_aggregates_levels_with_counts_best_first(book):
    rest(book, 1, "a", BUY, 99, 2)
    rest(book, 2, "c", BUY, 99, 3)
    rest(book, 3, "a", BUY, 98, 1)
    rest(book, 4, "a", SELL, 101, 4)
    assert book.depth() == ([(99, 5, 2), (98, 1, 1)], [(101, 4, 1)])
    assert book.depth(levels=1) == ([(99, 5, 2)], [(101, 4, 1)])


@pytest.mark.parametrize("kwargs, reason", [
    (dict(quantity=0, price=100), RejectReason.INVALID_QUANTITY),
    (dict(quantity=1, price=0), RejectReason.INVALID_PRICE),
    (dict(quantity=1, price=None), RejectReason.INVALID_ORDER),
    (dict(quantity=1, price=100, post_only=True, time_in_force="ioc"), RejectReason.INVALID_ORDER),
])
def test_submit_invalid_order_is_rejected_without_change(book, kwargs, reason):
    assert book.submit(1, "a", BUY, **kwargs) is reason
    assert book.open_order_count() == 0 and book.sequence == 0


def test_trade_ids_form_a_gapless_tape(book):
    rest(book, 1, "a", SELL, 100, 3)
    book.submit_limit(2, "b", BUY, 100, 1)
    book.submit_limit(3, "b", BUY, 100, 1)
    assert [t.trade_id for t in book.tape] == [1, 2]
    assert all(isinstance(t, TradeExecuted) for t in book.tape)


def test_replaying_events_rebuilds_identical_book(book):
    events = []
    commands = [
        lambda: book.submit_limit(1, "a", SELL, 100, 3),
        lambda: book.submit_limit(2, "c", SELL, 101, 3),
        lambda: book.submit_limit(3, "b", BUY, 101, 4),
        lambda: book.submit_limit(4, "b", BUY, 99, 2),
        lambda: book.cancel(4),
        lambda: book.submit_market(5, "a", BUY, 9),
        lambda: book.submit_limit(6, "a", BUY, 98, 2, post_only=True),
    ]
    for command in commands:
        outcome = command()
        events.extend(outcome.events if hasattr(outcome, "events") else [outcome])
    rebuilt = OrderBook(book.spec)
    for event in events:
        rebuilt.apply(event)
    assert rebuilt.to_state() == book.to_state()
    assert state_digest(OrderBook.from_state(book.to_state()).to_state()) == state_digest(book.to_state())
