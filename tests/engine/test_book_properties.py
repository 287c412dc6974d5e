"""Property tests: the fast `OrderBook` against the reference book in `reference_book.py`.

Random streams of limit (gtc/ioc/fok, post-only) and market orders (ioc/fok, buys
with and without a money budget) and cancels, from 3 to 5 users over a narrow
price band so that orders cross, meet their owner's own orders and leave dead
entries in the price levels. Orders enter through `submit` or through the hot
paths `submit_limit` / `submit_market`, which must decide the same way. Every
command goes to both books; the results and the whole books must agree after
each one.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, NamedTuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import BUY, SELL, AssetSpec, OrderBook, OrderClosed, OrderRested, RejectReason, TradeExecuted
from engine.book import SubmitResult
from tests.engine.reference_book import ReferenceBook, ReferenceResult

UNKNOWN_ORDER_ID = 10**9
SPECS = (
    AssetSpec.create("AAA", "0.01", "1"),  # 1_000_000 money units per tick × lot
    AssetSpec.create("BBB", "0.0001", "0.0001"),  # 1 money unit per tick × lot
    AssetSpec.create("CCC", "0.5", "0.01"),  # 500_000
)
STREAM_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Limit(NamedTuple):
    user: str
    side: str
    price: int
    quantity: int
    time_in_force: str
    post_only: bool
    entry: str = "submit"  # or "shortcut": `submit_limit`, the GTC hot path


class Market(NamedTuple):
    user: str
    side: str
    quantity: int
    time_in_force: str
    budget: int | None
    entry: str = "submit"  # or "shortcut": `submit_market`, the IOC hot path


class Cancel(NamedTuple):
    back: int  # 1 = the latest order id, 2 = the one before, ...; 0 = an id never used


class Stream(NamedTuple):
    spec: AssetSpec
    commands: list


@st.composite
def streams(draw, low: int = 98, high: int = 102, min_size: int = 10, max_size: int = 80,
            cancel_weight: int = 2) -> Stream:
    """Draw a spec and a command stream from 3-5 users over prices low..high."""
    spec = draw(st.sampled_from(SPECS))
    unit = spec.money_per_tick_lot
    users = st.sampled_from([f"user{i}" for i in range(draw(st.integers(3, 5)))])
    sides = st.sampled_from([BUY, SELL])
    prices = st.integers(low, high)
    quantities = st.integers(1, 8)
    entries = st.sampled_from(["submit", "shortcut"])
    limits = st.builds(Limit, users, sides, prices, quantities,
                       st.sampled_from(["gtc", "gtc", "ioc", "fok"]), st.just(False), entries)
    post_only = st.builds(Limit, users, sides, prices, quantities, st.just("gtc"), st.just(True), entries)
    market_tif = st.sampled_from(["ioc", "fok"])
    markets = st.builds(Market, users, sides, quantities, market_tif, st.none(), entries)
    budgets = st.one_of(
        st.integers(1, 5 * high * unit),
        # Exactly what some lots cost at a price in the band: the edges of "affords one more lot".
        st.builds(lambda price, lots, extra: price * lots * unit + extra,
                  prices, st.integers(1, 6), st.sampled_from([-1, 0, 0, 1])),
    )
    budget_buys = st.builds(Market, users, st.just(BUY), quantities, market_tif, budgets, entries)
    cancels = st.builds(Cancel, st.one_of(st.integers(1, 6), st.integers(0, 20)))
    command = st.one_of(limits, limits, limits, post_only, markets, budget_buys,
                        *([cancels] * cancel_weight))
    return Stream(spec, draw(st.lists(command, min_size=min_size, max_size=max_size)))


# ---- driving both books ------------------------------------------------------


def book_orders(book: OrderBook, side: str) -> list[tuple]:
    return [(o.order_id, o.owner, o.price, o.remaining) for o in book.orders_in_priority(side)]


def reference_orders(reference: ReferenceBook, side: str) -> list[tuple]:
    return [(o.order_id, o.owner, o.price, o.remaining) for o in reference.orders_in_priority(side)]


def expected_events(order_id: int, command, price: int | None, result: ReferenceResult,
                    timestamp: int) -> list:
    """Build the events the engine must return for the reference's result."""
    events: list = [
        TradeExecuted(trade.trade_id, trade.price, trade.quantity, command.side, order_id, command.user,
                      trade.maker_order_id, trade.maker_owner, timestamp)
        for trade in result.trades
    ]
    if result.status in ("confirmed", "processing"):
        events.append(OrderRested(order_id, command.user, command.side, price,
                                  command.quantity - result.filled_quantity, timestamp))
    else:
        events.append(OrderClosed(order_id, command.user, result.status, result.reason, timestamp))
    return events


def submit(book: OrderBook, order_id: int, command, timestamp: int) -> SubmitResult | RejectReason:
    """Send an order through `submit` or through the entry point the command names."""
    if command.entry == "shortcut" and isinstance(command, Limit):
        return book.submit_limit(order_id, command.user, command.side, command.price, command.quantity,
                                 time_in_force=command.time_in_force, post_only=command.post_only,
                                 timestamp=timestamp)
    if command.entry == "shortcut":
        return book.submit_market(order_id, command.user, command.side, command.quantity,
                                  time_in_force=command.time_in_force, budget=command.budget,
                                  timestamp=timestamp)
    price = command.price if isinstance(command, Limit) else None
    return book.submit(order_id, command.user, command.side, command.quantity, price=price,
                       time_in_force=command.time_in_force,
                       post_only=command.post_only if isinstance(command, Limit) else False,
                       budget=command.budget if isinstance(command, Market) else None,
                       timestamp=timestamp)


class Run(NamedTuple):
    book: OrderBook
    reference: ReferenceBook
    events: list


def run_stream(stream: Stream, compare_each_step: bool = True,
               after_each: Callable[[OrderBook], None] | None = None) -> Run:
    """Send every command to both books, comparing results and books after each one."""
    book = OrderBook(stream.spec)
    reference = ReferenceBook(stream.spec.money_per_tick_lot)
    events: list = []
    last_order_id = 0
    for timestamp, command in enumerate(stream.commands, start=1):
        if isinstance(command, Cancel):
            target = last_order_id - command.back + 1 if command.back else UNKNOWN_ORDER_ID
            got = book.cancel(target, timestamp=timestamp)
            if not isinstance(got, RejectReason):
                events.append(got)
            if compare_each_step:
                removed = reference.cancel(target)
                if removed is None:
                    assert got is RejectReason.ORDER_NOT_OPEN, (command, got)
                else:
                    assert got == OrderClosed(target, removed.owner, "cancelled", "user_cancelled", timestamp)
        else:
            last_order_id += 1
            price = command.price if isinstance(command, Limit) else None
            post_only = command.post_only if isinstance(command, Limit) else False
            budget = command.budget if isinstance(command, Market) else None
            got = submit(book, last_order_id, command, timestamp)
            assert isinstance(got, SubmitResult), (command, got)
            events.extend(got.events)
            if compare_each_step:
                expected = reference.submit(last_order_id, command.user, command.side, command.quantity,
                                            price=price, time_in_force=command.time_in_force,
                                            post_only=post_only, budget=budget)
                assert (got.order_id, got.status, got.reason, got.filled_quantity) == (
                    last_order_id, expected.status, expected.reason, expected.filled_quantity), command
                assert got.events == expected_events(last_order_id, command, price, expected, timestamp), command
        if compare_each_step:
            for side in (BUY, SELL):
                assert book_orders(book, side) == reference_orders(reference, side), command
            assert (book.best_bid(), book.best_ask()) == (reference.best_bid(), reference.best_ask())
            assert (book.trade_sequence, book.last_price) == (reference.trade_count, reference.last_price)
        if after_each is not None:
            after_each(book)
    return Run(book, reference, events)


def aggregate(orders) -> list[tuple[int, int, int]]:
    levels: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for order in orders:
        levels[order.price][0] += order.remaining
        levels[order.price][1] += 1
    return [(price, quantity, count) for price, (quantity, count) in levels.items()]


# ---- the reference itself, on cases worked out by hand -------------------------


def test_reference_book_budget_buy_takes_affordable_lots_then_stops_insufficient_funds():
    reference = ReferenceBook(money_per_tick_lot=1)
    reference.submit(1, "a", SELL, 2, price=10)
    reference.submit(2, "a", SELL, 5, price=11)
    result = reference.submit(3, "b", BUY, 6, budget=20 + 3 * 11 + 5)
    assert (result.status, result.reason, result.filled_quantity) == ("cancelled", "insufficient_funds", 5)
    assert [(t.price, t.quantity) for t in result.trades] == [(10, 2), (11, 3)]
    assert [(o.order_id, o.remaining) for o in reference.orders_in_priority(SELL)] == [(2, 2)]


def test_reference_book_fok_meeting_own_order_before_full_quantity_is_unfillable_without_trades():
    reference = ReferenceBook(money_per_tick_lot=1)
    reference.submit(1, "a", SELL, 2, price=10)
    reference.submit(2, "b", SELL, 5, price=10)
    reference.submit(3, "c", SELL, 5, price=10)
    result = reference.submit(4, "b", BUY, 3, price=10, time_in_force="fok")
    assert (result.status, result.reason, result.trades) == ("cancelled", "fok_unfillable", ())
    result = reference.submit(5, "b", BUY, 2, price=10, time_in_force="fok")
    assert (result.status, result.filled_quantity) == ("completed", 2)
    assert [o.order_id for o in reference.orders_in_priority(SELL)] == [2, 3]


def test_reference_book_post_only_crossing_own_order_fails_and_leaves_book_unchanged():
    reference = ReferenceBook(money_per_tick_lot=1)
    reference.submit(1, "a", SELL, 2, price=10)
    result = reference.submit(2, "a", BUY, 1, price=10, post_only=True)
    assert (result.status, result.reason) == ("failed", "post_only_would_match")
    assert reference.orders_in_priority(BUY) == [] and len(reference.orders_in_priority(SELL)) == 1


# ---- the properties ----------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_book_random_streams_match_reference_book(stream):
    run_stream(stream)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(low=100, high=101, min_size=60, max_size=160, cancel_weight=6))
def test_book_long_two_price_streams_with_many_cancels_match_reference_book(stream):
    run_stream(stream)


def test_book_level_with_many_cancelled_orders_keeps_time_priority_like_reference_book():
    # 100 asks at one price, then orders 6..85 cancelled out of the middle of the queue: more
    # dead entries than live ones + 32, so the level compacts itself; then buys walk the queue.
    commands: list = [Limit(f"user{i % 3}", SELL, 100, 1 + i % 4, "gtc", False) for i in range(100)]
    commands += [Cancel(back) for back in range(95, 15, -1)]
    commands += [Market("buyer", BUY, 7, "ioc", None), Limit("buyer", BUY, 100, 9, "gtc", False),
                 Cancel(1), Market("user1", BUY, 200, "ioc", None)]
    run = run_stream(Stream(SPECS[0], commands))
    assert run.book.open_order_count() == len(run.reference.orders)


@STREAM_SETTINGS
@given(streams())
def test_book_random_streams_never_leave_a_crossed_book(stream):
    def assert_not_crossed(book: OrderBook) -> None:
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is None or ask is None or bid < ask, (bid, ask)

    run_stream(stream, compare_each_step=False, after_each=assert_not_crossed)


@STREAM_SETTINGS
@given(streams())
def test_book_depth_after_random_streams_aggregates_resting_orders_per_price(stream):
    run = run_stream(stream)
    bids, asks = run.book.depth(levels=1000)
    assert bids == aggregate(run.book.orders_in_priority(BUY)) == run.reference.depth(BUY)
    assert asks == aggregate(run.book.orders_in_priority(SELL)) == run.reference.depth(SELL)
    for levels in (1, 2, 3):
        assert run.book.depth(levels=levels) == (bids[:levels], asks[:levels])
    assert [price for price, _, _ in bids] == sorted({price for price, _, _ in bids}, reverse=True)
    assert [price for price, _, _ in asks] == sorted({price for price, _, _ in asks})
    assert all(quantity > 0 and count > 0 for _, quantity, count in bids + asks)


@STREAM_SETTINGS
@given(streams())
def test_book_rebuilt_by_applying_its_events_equals_original_state(stream):
    run = run_stream(stream, compare_each_step=False)
    rebuilt = OrderBook(stream.spec)
    for event in run.events:
        rebuilt.apply(event)
    assert rebuilt.to_state() == run.book.to_state()


@STREAM_SETTINGS
@given(streams())
def test_book_from_state_of_to_state_after_random_streams_is_identical(stream):
    run = run_stream(stream, compare_each_step=False)
    state = run.book.to_state()
    restored = OrderBook.from_state(state)
    assert restored.to_state() == state
    # The restored book must also behave the same: sweep both sides of both books.
    for book in (run.book, restored):
        book.submit(UNKNOWN_ORDER_ID, "sweeper", BUY, 10**6, time_in_force="ioc", timestamp=0)
        book.submit(UNKNOWN_ORDER_ID + 1, "sweeper", SELL, 10**6, time_in_force="ioc", timestamp=0)
    assert restored.to_state() == run.book.to_state()
