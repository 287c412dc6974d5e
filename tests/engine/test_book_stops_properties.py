"""Property tests: stops, amends and cancel-all in the fast `OrderBook` against the reference book.

The streams of test_book_properties.py, with stop orders (both kinds, both sides, limit and
market sells) whose triggers sit in and around the traded band, amends (fewer lots, a new
price, both) of recent orders, and cancel-alls of one user. Every command goes to both
books; the results, the cascades' events, the books and the waiting stops must agree after
each one, and the events must rebuild the same book.
"""

from __future__ import annotations

from typing import NamedTuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import (
    BUY, SELL, AmendRefused, OrderAmended, OrderBook, OrderClosed, RejectReason, StopAccepted, StopTriggered,
)
from engine.book import SubmitResult
from tests.engine.reference_book import ReferenceBook
from tests.engine.test_book_properties import (
    UNKNOWN_ORDER_ID, Cancel, Limit, Market, Stream, book_orders, expected_events, reference_orders, streams,
    submit,
)


class Stop(NamedTuple):
    user: str
    side: str
    stop_kind: str
    stop_price: int
    quantity: int
    price: int | None  # None: a stop market sell
    time_in_force: str


class Amend(NamedTuple):
    back: int  # as Cancel's
    reduced_by: int
    price: int | None


class CancelAll(NamedTuple):
    user: str


@st.composite
def stop_streams(draw, max_size: int = 90) -> Stream:
    """A stream of test_book_properties.streams with stops, amends and cancel-alls mixed in."""
    base = draw(streams(max_size=max_size))
    users = st.sampled_from([f"user{i}" for i in range(4)])
    kinds = st.sampled_from(["stop_loss", "take_profit"])
    triggers = st.integers(95, 105)
    stop_limits = st.builds(Stop, users, st.sampled_from([BUY, SELL]), kinds, triggers, st.integers(1, 8),
                            st.integers(96, 104), st.sampled_from(["gtc", "gtc", "ioc"]))
    stop_markets = st.builds(Stop, users, st.just(SELL), kinds, triggers, st.integers(1, 8), st.none(),
                             st.just("ioc"))
    amends = st.builds(Amend, st.integers(1, 8), st.integers(0, 4), st.one_of(st.none(), st.integers(96, 104)))
    extra = st.one_of(stop_limits, stop_limits, stop_markets, amends, amends, st.builds(CancelAll, users))
    commands = list(base.commands)
    for _ in range(draw(st.integers(len(commands) // 3, len(commands)))):
        commands.insert(draw(st.integers(0, len(commands))), draw(extra))
    return Stream(base.spec, commands)


def cascade_events(cascade: list, timestamp: int) -> list:
    """The events the engine must return for a reference cascade [(stop, result), ...]."""
    events: list = []
    for stop, result in cascade:
        events.append(StopTriggered(stop.order_id, stop.owner, timestamp))
        as_order = Limit(stop.owner, stop.side, stop.price, stop.quantity, stop.time_in_force, False)
        events.extend(expected_events(stop.order_id, as_order, stop.price, result, timestamp))
    return events


def book_stops(book: OrderBook) -> list[tuple]:
    return sorted(entry[:8] for entry in book.stops.in_priority())


def reference_stops(reference: ReferenceBook) -> list[tuple]:
    return sorted((s.order_id, s.owner, s.side, s.stop_kind, s.stop_price, s.price, s.quantity, s.time_in_force)
                  for s in reference.stops)


def run_stop_stream(stream: Stream) -> tuple[OrderBook, list]:
    """Send every command to both books, comparing everything after each one; return the book and
    every event it returned."""
    book = OrderBook(stream.spec)
    reference = ReferenceBook(stream.spec.money_per_tick_lot)
    events: list = []
    last_order_id = 0
    owners: dict[int, str] = {}
    post_only: dict[int, bool] = {}
    for timestamp, command in enumerate(stream.commands, start=1):
        if isinstance(command, Cancel):
            target = last_order_id - command.back + 1 if command.back else UNKNOWN_ORDER_ID
            got = book.cancel(target, timestamp=timestamp)
            removed = reference.cancel(target)
            if removed is None:
                assert got is RejectReason.ORDER_NOT_OPEN, (command, got)
            else:
                assert got == OrderClosed(target, removed.owner, "cancelled", "user_cancelled", timestamp)
                events.append(got)
        elif isinstance(command, CancelAll):
            for target in reference.open_ids(command.user):
                got = book.cancel(target, timestamp=timestamp)
                assert got == OrderClosed(target, command.user, "cancelled", "user_cancelled", timestamp), command
                reference.cancel(target)
                events.append(got)
        elif isinstance(command, Stop):
            last_order_id += 1
            owners[last_order_id] = command.user
            got = book.submit_stop(last_order_id, command.user, command.side, command.stop_kind,
                                   command.stop_price, command.quantity, price=command.price,
                                   time_in_force=command.time_in_force, timestamp=timestamp)
            assert isinstance(got, SubmitResult), (command, got)
            cascade = reference.submit_stop(last_order_id, command.user, command.side, command.stop_kind,
                                            command.stop_price, command.quantity, command.price,
                                            command.time_in_force)
            assert got.events == [StopAccepted(last_order_id, *command[:2], command.stop_kind, command.stop_price,
                                               command.price, command.quantity, command.time_in_force, timestamp)]
            assert list(got.cascade) == cascade_events(cascade, timestamp), command
            events.extend(got.all_events)
        elif isinstance(command, Amend):
            target = last_order_id - command.back + 1
            price = command.price
            current = next((o for o in [*reference.orders, *reference.stops] if o.order_id == target), None)
            if current is not None and price == current.price:
                price = None  # the shard sends no price that is the order's own
            if price is None and not command.reduced_by:
                continue  # nor an amend that changes nothing
            owner = owners.get(target, "nobody")
            got = book.amend(timestamp, target, owner, command.reduced_by, price,
                             post_only=post_only.get(target, False), timestamp=timestamp)
            refusal, moved, cascade = reference.amend(target, command.reduced_by, price, post_only.get(target, False))
            if refusal is not None:
                assert got == [AmendRefused(target, owner, timestamp, refusal, timestamp)], command
            else:
                expected = [OrderAmended(target, owner, timestamp, command.reduced_by, price, timestamp)]
                if moved is not None:  # it entered again with what it had left, less reduced_by
                    as_order = Limit(owner, current.side, price, current.remaining - command.reduced_by, "gtc", False)
                    expected += expected_events(target, as_order, price, moved, timestamp)
                    expected += cascade_events(cascade, timestamp)
                assert got == expected, command
            events.extend(got)
        else:
            last_order_id += 1
            owners[last_order_id] = command.user
            post_only[last_order_id] = isinstance(command, Limit) and command.post_only
            price = command.price if isinstance(command, Limit) else None
            got = submit(book, last_order_id, command, timestamp)
            assert isinstance(got, SubmitResult), (command, got)
            expected, cascade = reference.submit_and_cascade(
                last_order_id, command.user, command.side, command.quantity, price=price,
                time_in_force=command.time_in_force, post_only=post_only[last_order_id],
                budget=command.budget if isinstance(command, Market) else None)
            assert (got.status, got.reason, got.filled_quantity) == (
                expected.status, expected.reason, expected.filled_quantity), command
            assert got.events == expected_events(last_order_id, command, price, expected, timestamp), command
            assert list(got.cascade) == cascade_events(cascade, timestamp), command
            events.extend(got.all_events)
        for side in (BUY, SELL):
            assert book_orders(book, side) == reference_orders(reference, side), command
        assert book_stops(book) == reference_stops(reference), command
        assert (book.trade_sequence, book.last_price) == (reference.trade_count, reference.last_price)
    return book, events


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stop_streams())
def test_book_streams_with_stops_amends_and_cancel_all_match_reference_book(stream):
    run_stop_stream(stream)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stop_streams())
def test_book_with_stops_rebuilt_from_its_events_and_from_its_state_is_identical(stream):
    book, events = run_stop_stream(stream)
    rebuilt = OrderBook(stream.spec)
    for event in events:
        rebuilt.apply(event)
    assert rebuilt.to_state() == book.to_state()
    restored = OrderBook.from_state(book.to_state())
    assert restored.to_state() == book.to_state()
    # Both must go on the same way: a sweep each way triggers whatever waits, in the same order.
    for each in (book, restored):
        each.submit(UNKNOWN_ORDER_ID, "sweeper", BUY, 10**6, time_in_force="ioc", timestamp=0)
        each.submit(UNKNOWN_ORDER_ID + 1, "sweeper", SELL, 10**6, time_in_force="ioc", timestamp=0)
    assert restored.to_state() == book.to_state()

