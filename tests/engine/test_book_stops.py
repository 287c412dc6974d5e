"""Stops, cascades and amends in the book, on cases worked out by hand (API.md rules)."""

from __future__ import annotations

from engine import (
    BUY, SELL, AmendRefused, AssetSpec, OrderAmended, OrderBook, OrderClosed, OrderRested, RejectReason,
    StopAccepted, StopTriggered, TradeExecuted,
)

SPEC = AssetSpec.create("AAA", "1", "1")


def book_with_bids(*bids: tuple[int, str, int, int]) -> OrderBook:
    book = OrderBook(SPEC)
    for order_id, owner, price, quantity in bids:
        book.submit_limit(order_id, owner, BUY, price, quantity)
    return book


def kinds(events: list) -> list[str]:
    return [type(event).__name__ for event in events]


def test_three_stops_triggered_by_one_trade_enter_highest_trigger_first_then_by_placement():
    book = book_with_bids((1, "m", 100, 1), (2, "m", 95, 30))
    book.submit_limit(3, "t", SELL, 101, 1)
    book.submit_limit(4, "u", BUY, 101, 1)  # a trade at 101: the last price
    assert book.submit_stop(10, "a", SELL, "stop_loss", 99, 2, price=None, time_in_force="ioc").status == "pending"
    book.submit_stop(11, "b", SELL, "stop_loss", 100, 3, price=None, time_in_force="ioc")
    book.submit_stop(12, "c", SELL, "stop_loss", 99, 4, price=None, time_in_force="ioc")
    book.submit_stop(13, "d", SELL, "stop_loss", 90, 1, price=None, time_in_force="ioc")  # not reached
    result = book.submit_market(20, "s", SELL, 1)  # trades at 100: 100 >= 99, 100 and 99 all trigger
    assert result.status == "completed"
    triggered = [event.order_id for event in result.cascade if type(event) is StopTriggered]
    assert triggered == [11, 10, 12]
    assert [(t.taker_order_id, t.price, t.quantity) for t in result.cascade if type(t) is TradeExecuted] == [
        (11, 95, 3), (10, 95, 2), (12, 95, 4)]
    assert [entry[0] for entry in book.stops.in_priority()] == [13]


def test_cascade_stop_triggered_by_a_triggered_stop_joins_the_end_of_the_queue():
    book = book_with_bids((1, "m", 100, 1), (2, "m", 98, 1), (3, "m", 90, 10))
    book.submit_limit(4, "t", SELL, 100, 1)  # trades with 1 at 100: last price 100
    book.submit_stop(10, "a", SELL, "stop_loss", 99, 1, price=None, time_in_force="ioc")
    book.submit_stop(11, "b", SELL, "stop_loss", 97, 2, price=None, time_in_force="ioc")
    result = book.submit_limit(20, "s", SELL, 98, 1)  # trades at 98: triggers 10, which trades at 90: 11
    assert [(type(e).__name__, getattr(e, "order_id", getattr(e, "taker_order_id", None))) for e in result.cascade] == [
        ("StopTriggered", 10), ("TradeExecuted", 10), ("OrderClosed", 10),
        ("StopTriggered", 11), ("TradeExecuted", 11), ("OrderClosed", 11)]
    assert len(book.stops) == 0


def test_rising_price_triggers_buy_stop_loss_and_sell_take_profit_lowest_trigger_first():
    book = OrderBook(SPEC)
    book.submit_limit(1, "m", SELL, 100, 1)
    book.submit_limit(2, "m", SELL, 110, 10)
    book.submit_limit(3, "t", BUY, 100, 1)  # last price 100... and the ask at 100 is gone
    book.submit_stop(10, "a", BUY, "stop_loss", 105, 1, price=110, time_in_force="gtc")
    book.submit_stop(11, "b", SELL, "take_profit", 104, 1, price=104, time_in_force="gtc")
    book.submit_stop(12, "c", BUY, "take_profit", 95, 1, price=95, time_in_force="gtc")  # falls: not now
    result = book.submit_limit(20, "s", BUY, 110, 1)  # trades at 110
    triggered = [event.order_id for event in result.cascade if type(event) is StopTriggered]
    assert triggered == [11, 10]
    # 11 sells at 104 and rests (no bid that high); 10 then buys from it at 104: a trade in the cascade.
    assert [(t.taker_order_id, t.maker_order_id, t.price) for t in result.cascade if type(t) is TradeExecuted] == [
        (10, 11, 104)]


def test_stop_whose_trigger_holds_on_arrival_triggers_at_once():
    book = book_with_bids((1, "m", 100, 5))
    book.submit_limit(2, "t", SELL, 100, 1)  # last price 100
    result = book.submit_stop(10, "a", SELL, "stop_loss", 100, 2, price=None, time_in_force="ioc")
    assert kinds(result.events) == ["StopAccepted"]
    assert kinds(result.cascade) == ["StopTriggered", "TradeExecuted", "OrderClosed"]
    assert (result.status, result.filled_quantity) == ("completed", 2)


def test_no_trade_yet_means_no_trigger_holds():
    book = OrderBook(SPEC)
    assert book.submit_stop(10, "a", SELL, "stop_loss", 100, 2, price=None, time_in_force="ioc").status == "pending"
    assert book.submit_stop(11, "a", BUY, "stop_loss", 1, 2, price=5, time_in_force="gtc").status == "pending"


def test_stop_refusals_are_values_and_change_nothing():
    book = OrderBook(SPEC)
    assert book.submit_stop(1, "a", BUY, "stop_loss", 100, 1, price=None, time_in_force="ioc") is \
        RejectReason.INVALID_ORDER  # a stop market buy
    assert book.submit_stop(1, "a", SELL, "stop_loss", 100, 1, price=99, time_in_force="fok") is \
        RejectReason.INVALID_ORDER
    assert book.submit_stop(1, "a", SELL, "sideways", 100, 1, price=99) is RejectReason.INVALID_ORDER
    assert book.sequence == 0 and len(book.stops) == 0


def test_cancel_of_waiting_stop_closes_it_user_cancelled():
    book = OrderBook(SPEC)
    book.submit_stop(1, "a", SELL, "stop_loss", 100, 1, price=99)
    assert book.cancel(1, timestamp=5) == OrderClosed(1, "a", "cancelled", "user_cancelled", 5)
    assert len(book.stops) == 0 and book.cancel(1) is RejectReason.ORDER_NOT_OPEN


def test_amend_fewer_lots_keeps_time_priority():
    book = book_with_bids((1, "a", 100, 5), (2, "b", 100, 5))
    assert book.amend(7, 1, "a", 3, None) == [OrderAmended(1, "a", 7, 3, None, 0)]
    result = book.submit_market(3, "s", SELL, 3)
    assert [(t.maker_order_id, t.quantity) for t in result.trades] == [(1, 2), (2, 1)]


def test_amend_to_new_price_loses_priority_and_crossing_move_trades_at_once():
    book = book_with_bids((1, "a", 100, 5), (2, "b", 100, 5))
    book.submit_limit(3, "s", SELL, 102, 2)
    events = book.amend(7, 1, "a", 0, 101)
    assert events == [OrderAmended(1, "a", 7, 0, 101, 0), OrderRested(1, "a", BUY, 101, 5, 0)]
    events = book.amend(8, 2, "b", 1, 102)  # crosses: buys 2 at 102, rests 2
    assert kinds(events) == ["OrderAmended", "TradeExecuted", "OrderRested"]
    assert events[-1] == OrderRested(2, "b", BUY, 102, 2, 0)
    assert book.amend(9, 1, "a", 0, 100) == [OrderAmended(1, "a", 9, 0, 100, 0), OrderRested(1, "a", BUY, 100, 5, 0)]


def test_amend_refusals_change_nothing():
    book = book_with_bids((1, "a", 100, 5))
    book.submit(2, "p", SELL, 2, price=105, post_only=True)
    before = book.to_state()
    assert book.amend(7, 1, "a", 5, None) == [AmendRefused(1, "a", 7, "INVALID_AMEND", 0)]
    assert book.amend(8, 2, "p", 0, 100, post_only=True) == [AmendRefused(2, "p", 8, "POST_ONLY_WOULD_MATCH", 0)]
    assert book.amend(9, 99, "a", 1, None) == [AmendRefused(99, "a", 9, "ORDER_NOT_OPEN", 0)]
    after = book.to_state()
    assert {k: v for k, v in after.items() if k != "sequence"} == {k: v for k, v in before.items() if k != "sequence"}


def test_amend_of_waiting_stop_keeps_it_waiting_and_its_trigger():
    book = OrderBook(SPEC)
    book.submit_stop(1, "a", SELL, "stop_loss", 100, 5, price=99)
    book.submit_stop(2, "b", SELL, "stop_loss", 100, 5, price=None, time_in_force="ioc")
    assert book.amend(7, 1, "a", 2, 98) == [OrderAmended(1, "a", 7, 2, 98, 0)]
    assert book.amend(8, 2, "b", 0, 98) == [AmendRefused(2, "b", 8, "INVALID_AMEND", 0)]  # a stop market
    assert [entry[:8] for entry in book.stops.in_priority()] == [
        (1, "a", SELL, "stop_loss", 100, 98, 3, "gtc"), (2, "b", SELL, "stop_loss", 100, None, 5, "ioc")]


def test_stop_accepted_event_replays_to_a_waiting_stop():
    book = OrderBook(SPEC)
    result = book.submit_stop(1, "a", BUY, "take_profit", 90, 5, price=91, timestamp=3)
    assert result.events == [StopAccepted(1, "a", BUY, "take_profit", 90, 91, 5, "gtc", 3)]
    rebuilt = OrderBook(SPEC)
    rebuilt.apply(result.events[0])
    assert rebuilt.to_state() == book.to_state()


def test_shrink_after_moving_away_and_back_finds_the_live_entry_not_its_equal_dead_one():
    book = book_with_bids((1, "a", 100, 5), (2, "b", 100, 5))
    book.amend(7, 1, "a", 0, 101)
    book.amend(8, 1, "a", 0, 100)  # back at 100, behind 2; its old entry, equal in value, lies dead ahead
    assert book.amend(9, 1, "a", 2, None) == [OrderAmended(1, "a", 9, 2, None, 0)]
    result = book.submit_market(3, "s", SELL, 6)
    assert [(t.maker_order_id, t.quantity) for t in result.trades] == [(2, 5), (1, 1)]
    assert [(o.order_id, o.remaining) for o in book.orders_in_priority(BUY)] == [(1, 2)]
