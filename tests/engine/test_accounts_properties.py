"""Property tests: `Accounts` and `OrderBook` driven together, the way a shard and a book cooperate.

Each order is placed with the accounts first (which holds its funds, or refuses
and changes nothing), then matched by the book (a market buy with its hold as
budget), and the book's events are settled back as numbered batches; cancels
go to the book and their close is settled the same way. After every step the
balances must be conserved, holds must equal what open orders reserve, and the
open order records must be exactly the book's resting orders.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import NamedTuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import (
    BUY, SELL, USD, Accounts, AssetSpec, FundsHeld, OrderBook, OrderStatus, OrderType, RejectReason,
    TimeInForce,
)
from engine.book import SubmitResult

ASSET = "XYZ"
SPECS = (
    AssetSpec.create(ASSET, "0.01", "0.001"),  # 1_000 money units per tick × lot
    AssetSpec.create(ASSET, "0.0001", "0.0001"),  # 1 money unit per tick × lot
)
UNKNOWN_ORDER_ID = 10**9
OPEN_ON_BOOK = (OrderStatus.CONFIRMED, OrderStatus.PROCESSING)
STREAM_SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Deposit(NamedTuple):
    user: str
    asset_id: str
    amount: int


class Withdraw(NamedTuple):
    user: str
    asset_id: str
    amount: int


class Place(NamedTuple):
    user: str
    order_type: OrderType
    quantity: int
    price: int | None
    time_in_force: TimeInForce
    post_only: bool
    client_order_id: str | None


class Cancel(NamedTuple):
    back: int  # 1 = the latest order id, 2 = the one before, ...; 0 = an id never used


class Stream(NamedTuple):
    spec: AssetSpec
    commands: list


@st.composite
def streams(draw, min_size: int = 10, max_size: int = 70) -> Stream:
    """Draw a spec and a stream of deposits, withdrawals, orders and cancels from 3-5 users."""
    spec = draw(st.sampled_from(SPECS))
    unit = spec.money_per_tick_lot
    names = [f"user{i}" for i in range(draw(st.integers(3, 5)))]
    users = st.sampled_from(names)
    prices = st.integers(98, 102)
    quantities = st.integers(1, 8)
    # Enough USD for a handful of lots at the band's prices, sometimes less than one.
    usd_amounts = st.one_of(st.integers(1, 3 * 102 * unit), st.integers(1, 20 * 102 * unit))
    asset_amounts = st.integers(1, 20)
    deposits = st.one_of(st.builds(Deposit, users, st.just(USD), usd_amounts),
                         st.builds(Deposit, users, st.just(ASSET), asset_amounts))
    withdrawals = st.one_of(st.builds(Withdraw, users, st.just(USD), usd_amounts),
                            st.builds(Withdraw, users, st.just(ASSET), asset_amounts))
    client_ids = st.one_of(st.none(), st.none(), st.none(), st.sampled_from(["c1", "c2", "c3", "c4"]))
    limits = st.builds(Place, users, st.sampled_from([OrderType.LIMIT_BUY, OrderType.LIMIT_SELL]),
                       quantities, prices,
                       st.sampled_from([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK]),
                       st.just(False), client_ids)
    post_only = st.builds(Place, users, st.sampled_from([OrderType.LIMIT_BUY, OrderType.LIMIT_SELL]),
                          quantities, prices, st.just(TimeInForce.GTC), st.just(True), client_ids)
    markets = st.builds(Place, users, st.sampled_from([OrderType.MARKET_BUY, OrderType.MARKET_SELL]),
                        quantities, st.none(), st.sampled_from([TimeInForce.IOC, TimeInForce.FOK]),
                        st.just(False), client_ids)
    cancels = st.builds(Cancel, st.one_of(st.integers(1, 6), st.integers(0, 20)))
    command = st.one_of(deposits, withdrawals, limits, limits, limits, limits, post_only, markets,
                        markets, cancels, cancels)
    # Everyone starts with something, so that most orders are not refused; user2 with less
    # USD than a few lots cost, so that its market buys run out of budget.
    opening = [Deposit(user, USD, draw(st.integers(20 * unit, 400 * unit) if user == "user2"
                                       else st.integers(2000 * unit, 8000 * unit)))
               for user in names]
    opening += [Deposit(user, ASSET, draw(st.integers(10, 40))) for user in names]
    return Stream(spec, opening + draw(st.lists(command, min_size=min_size, max_size=max_size)))


# ---- the shard and the book, wired together ------------------------------------


class Exchange:
    """One `Accounts` and one `OrderBook`, with the ledger totals the test expects."""

    def __init__(self, spec: AssetSpec) -> None:
        self.spec = spec
        self.accounts = Accounts()
        self.book = OrderBook(spec)
        self.accounts_events: list = []
        self.book_events: list = []
        self.settlement_sequence = 0
        self.last_order_id = 0
        self.net_deposits: Counter[str] = Counter()  # deposits − withdrawals per asset
        self.client_ids: set[tuple[str, str]] = set()
        self.closed: dict = {}  # history handed over by the accounts: closed orders by id
        self.transactions: list = []
        self.record(self.accounts.list_asset(spec))

    def record(self, events):
        assert not isinstance(events, RejectReason), events
        self.accounts_events.extend(events)
        closed, transactions = self.accounts.take_history()
        for order in closed:
            assert not order.is_open and order.order_id not in self.accounts.orders
            self.closed[order.order_id] = order
        self.transactions.extend(transactions)
        return events

    def order(self, order_id):
        """An order, open (hot state) or closed (handed over as history); None if unknown."""
        return self.accounts.orders.get(order_id) or self.closed.get(order_id)

    def all_orders(self) -> dict:
        return {**self.closed, **self.accounts.orders}

    def refused(self, call) -> RejectReason:
        """Run a command that must be refused; assert it changed nothing."""
        before = self.accounts.to_state()
        answer = call()
        assert isinstance(answer, RejectReason), answer
        assert self.accounts.to_state() == before
        return answer

    def settle(self, book_events: list) -> None:
        self.settlement_sequence += 1
        self.record(self.accounts.settle(ASSET, self.settlement_sequence, tuple(book_events)))

    def run(self, command, timestamp: int) -> None:
        if isinstance(command, Deposit):
            self.record(self.accounts.deposit(command.user, command.asset_id, command.amount, timestamp))
            self.net_deposits[command.asset_id] += command.amount
        elif isinstance(command, Withdraw):
            available = self.accounts.balance(command.user, command.asset_id)[0]
            if command.amount > available:
                answer = self.refused(lambda: self.accounts.withdraw(command.user, command.asset_id,
                                                                     command.amount, timestamp))
                assert answer is RejectReason.INSUFFICIENT_BALANCE
            else:
                self.record(self.accounts.withdraw(command.user, command.asset_id, command.amount, timestamp))
                self.net_deposits[command.asset_id] -= command.amount
        elif isinstance(command, Cancel):
            target = self.last_order_id - command.back + 1 if command.back else UNKNOWN_ORDER_ID
            closed = self.book.cancel(target, timestamp=timestamp)
            if isinstance(closed, RejectReason):
                assert closed is RejectReason.ORDER_NOT_OPEN
                record = self.order(target)
                assert record is None or not record.is_open
            else:
                self.book_events.append(closed)
                self.settle([closed])
                record = self.order(target)
                assert (record.status, record.reason) == (OrderStatus.CANCELLED, "user_cancelled")
        else:
            self.place(command, timestamp)

    def place(self, command: Place, timestamp: int) -> None:
        self.last_order_id += 1
        order_id = self.last_order_id
        user, order_type = command.user, command.order_type

        def place_order():
            return self.accounts.place_order(
                order_id, user, ASSET, order_type, command.time_in_force, command.post_only,
                command.quantity, command.price, command.client_order_id, None, timestamp)

        if command.client_order_id is not None and (user, command.client_order_id) in self.client_ids:
            # The accounts know the client order ids of open orders; those of closed orders are
            # history, which the shard checks before it asks the accounts (the id is never placed).
            if (user, command.client_order_id) in self.accounts.client_order_ids:
                assert self.refused(place_order) is RejectReason.DUPLICATE_CLIENT_ORDER_ID
            return
        if order_type.side.value == SELL:
            needed = command.quantity
            available = self.accounts.balance(user, ASSET)[0]
        else:
            available = self.accounts.balance(user, USD)[0]
            needed = max(available, 1) if order_type.is_market else self.spec.notional(command.price,
                                                                                         command.quantity)
        if needed > available:
            assert self.refused(place_order) is RejectReason.INSUFFICIENT_BALANCE
            return

        placed = self.record(place_order())
        if command.client_order_id is not None:
            self.client_ids.add((user, command.client_order_id))
        holds = [event for event in placed if isinstance(event, FundsHeld)]
        assert [(h.order_id, h.username, h.asset_id, h.amount) for h in holds] == [
            (order_id, user, USD if order_type.side.value == BUY else ASSET, needed)]
        check_invariants(self)  # the order is pending: held, recorded, not on the book yet

        budget = holds[0].amount if order_type is OrderType.MARKET_BUY else None
        result = self.book.submit(order_id, user, order_type.side.value, command.quantity,
                                  price=command.price, time_in_force=command.time_in_force.value,
                                  post_only=command.post_only, budget=budget, timestamp=timestamp)
        assert isinstance(result, SubmitResult), (command, result)
        self.book_events.extend(result.events)
        self.settle(result.events)
        record = self.order(order_id)
        assert (record.status.value, record.reason.value if record.reason else None,
                record.filled_quantity) == (result.status, result.reason, result.filled_quantity), command


def run_stream(stream: Stream) -> Exchange:
    exchange = Exchange(stream.spec)
    for timestamp, command in enumerate(stream.commands, start=1):
        exchange.run(command, timestamp)
        check_invariants(exchange)
    return exchange


def check_invariants(exchange: Exchange) -> None:
    """Assert the ledger and the book agree; see the module docstring."""
    accounts, book, spec = exchange.accounts, exchange.book, exchange.spec

    totals: Counter[str] = Counter()
    for user, assets in accounts.balances.items():
        for asset_id, (available, held, _) in assets.items():
            assert available >= 0 and held >= 0, (user, asset_id, available, held)
            totals[asset_id] += available + held
    for asset_id in (USD, ASSET):
        assert totals[asset_id] == exchange.net_deposits[asset_id], asset_id

    reserved: dict[tuple[str, str], int] = defaultdict(int)
    fills: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for transaction in exchange.transactions:
        if transaction.asset_id == ASSET:
            fills[transaction.order_id][0] += transaction.quantity
            fills[transaction.order_id][1] += transaction.total_amount
            assert transaction.total_amount == spec.notional(transaction.price, transaction.quantity)
    for order in exchange.all_orders().values():
        held_asset = USD if order.side.value == BUY else ASSET
        assert order.remaining_quantity == order.quantity - order.filled_quantity
        assert 0 <= order.filled_quantity <= order.quantity
        assert [order.filled_quantity, order.total_amount] == fills[order.order_id], order.order_id
        if order.is_open:
            reserved[(order.username, held_asset)] += order.reserved
            if order.status in OPEN_ON_BOOK and order.order_type is OrderType.LIMIT_BUY:
                assert order.reserved == spec.notional(order.price, order.remaining_quantity)
            elif order.status in OPEN_ON_BOOK:
                assert order.reserved == order.remaining_quantity
        else:
            assert order.reserved == 0, order.order_id
    for user, assets in accounts.balances.items():
        for asset_id, (_, held, _) in assets.items():
            assert held == reserved[(user, asset_id)], (user, asset_id)

    records = {
        order.order_id: (order.username, order.side.value, order.price, order.remaining_quantity)
        for order in accounts.orders.values() if order.status in OPEN_ON_BOOK
    }
    resting = {
        order.order_id: (order.owner, order.side, order.price, order.remaining)
        for side in (BUY, SELL) for order in book.orders_in_priority(side)
    }
    assert records == resting


# ---- the properties ----------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_accounts_with_book_random_streams_keep_balances_holds_and_open_orders_consistent(stream):
    exchange = run_stream(stream)
    assert exchange.settlement_sequence == exchange.accounts.settlement_sequences.get(ASSET, 0)


@STREAM_SETTINGS
@given(streams())
def test_accounts_rebuilt_by_replaying_their_events_equal_original_state(stream):
    exchange = run_stream(stream)
    rebuilt = Accounts()
    for event in exchange.accounts_events:
        rebuilt.apply(event)
    assert rebuilt.to_state() == exchange.accounts.to_state()
    book = OrderBook(stream.spec)
    for event in exchange.book_events:
        book.apply(event)
    assert book.to_state() == exchange.book.to_state()


@STREAM_SETTINGS
@given(streams())
def test_accounts_from_state_of_to_state_after_random_streams_is_identical(stream):
    exchange = run_stream(stream)
    state = exchange.accounts.to_state()
    assert Accounts.from_state(state).to_state() == state


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(min_size=0, max_size=30))
def test_accounts_settle_with_applied_or_skipped_sequence_is_refused_without_change(stream):
    exchange = run_stream(stream)
    applied = exchange.settlement_sequence
    for sequence in range(max(applied - 2, 1), applied + 1):
        assert exchange.refused(lambda: exchange.accounts.settle(ASSET, sequence, ())) is (
            RejectReason.SETTLEMENT_ALREADY_APPLIED)
    for sequence in (applied + 2, applied + 5):
        assert exchange.refused(lambda: exchange.accounts.settle(ASSET, sequence, ())) is (
            RejectReason.SETTLEMENT_OUT_OF_ORDER)
    assert exchange.refused(lambda: exchange.accounts.settle("OTHER", 2, ())) is (
        RejectReason.SETTLEMENT_OUT_OF_ORDER)
    # The next number is still the one accepted.
    exchange.settle([])
    assert exchange.accounts.settlement_sequences[ASSET] == applied + 1
