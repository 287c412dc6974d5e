"""Everything that crosses a Ray call, by name.

The gateway, the shards and the books talk in these immutable types; nobody
reads them by position outside this module. Engine values that cross as they
are (`OrderView`, `Balance`, `Transaction`, `Page`, `LevelRow`, `RestingOrder`,
`TradeExecuted`) are re-exported here so that one module lists every message.

An order travels as:
    HTTP body -> `OrderCreateRequest` (gateway model) -> `PlaceOrder` (gateway -> shard)
    -> `BookOrder` (shard -> book) -> engine events, journaled in an `OrdersMatched` record
    -> `SettlementBatch` (book -> shard, in a `SubmitAnswer` or by delivery)
    -> `OrderOutcome` with an `OrderView` (shard -> gateway) -> `OrderData` (HTTP answer).

The wire form. Ray serializes a call's arguments and answer with msgpack when
they are plain (lists, dicts with str keys, str, int, bool, None) and falls back
to pickle for anything else, tuples and NamedTuples included; measured with
Ray's own serialization context on this machine, one order in a call costs
~2 µs as a list of lists, ~8 µs as a list of tuples and ~14 µs as a list of
NamedTuples. So the hot calls (orders, cancels, settlements) carry messages as
rows, plain lists in field order (`to_rows`), and the receiver names them
again (`from_rows`, ~0.2 µs a message). Reads off the hot path (an order, a
page, a book's depth) cross as the named types themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import NamedTuple, TypeVar

from engine import Balance, OrderView, TradeExecuted, Transaction
from engine.book_level import LevelRow, RestingOrder
from engine.queries import Page

__all__ = [
    "to_rows", "from_rows", "PlaceOrder", "CancelOrder", "AmendOrder", "AdjustBalance", "BookAmend", "OrderOutcome", "BalanceOutcome",
    "BookOrder", "BookCancel", "SettlementBatch", "SubmitAnswer", "CancelAnswer", "MarketSummary",
    "BookDepth", "LevelChange", "StreamTrade", "BookChange", "MarketPoll", "OrderPoll", "StreamEntry", "Candle",
    "OrderView", "Balance", "Transaction", "Page", "LevelRow", "RestingOrder", "TradeExecuted",
]

_new = tuple.__new__
T = TypeVar("T")


def to_rows(messages: Iterable[tuple]) -> list[list]:
    """The wire form of flat messages: each a plain list of its fields, in order."""
    return [[*message] for message in messages]


def from_rows(kind: type[T], rows: Iterable[list]) -> list[T]:
    """Name flat messages of one type again from their wire form."""
    return [*map(partial(_new, kind), rows)]


# ---- gateway -> account shard ----------------------------------------------

class PlaceOrder(NamedTuple):
    """Hold funds for an order and send it to its book. Prices in ticks, quantities in lots."""

    username: str
    asset_id: str
    order_type: str
    time_in_force: str
    post_only: bool
    quantity: int
    price: int | None
    client_order_id: str | None
    description: str | None
    stop_price: int | None = None  # with stop_kind: a stop order (ticks)
    stop_kind: str | None = None


class CancelOrder(NamedTuple):
    username: str
    order_id: int


class AmendOrder(NamedTuple):
    """Change an open order: a new total `quantity` (lots) and/or limit `price` (ticks); None: unchanged."""

    username: str
    order_id: int
    quantity: int | None
    price: int | None


class AdjustBalance(NamedTuple):
    """An admin's deposit or withdrawal: money units for USD, lots otherwise."""

    kind: str  # "deposit" or "withdraw"
    username: str
    asset_id: str
    amount: int


# ---- account shard -> gateway ----------------------------------------------

PLACED, DUPLICATE, REJECTED = "ok", "duplicate", "rejected"


class OrderOutcome(NamedTuple):
    """A shard's answer to a `PlaceOrder` or a `CancelOrder`.

    `PLACED` (done) carries the order; `DUPLICATE` the earlier order with that client order id;
    `REJECTED` a `RejectReason` value, and the order where there is one (a cancel of a closed order).
    `remaining`: while an order rate limit is on, the user's whole tokens left after this one."""

    status: str
    reason: str | None
    order: OrderView | None
    remaining: int | None = None

    @classmethod
    def placed(cls, order: OrderView, remaining: int | None = None) -> OrderOutcome:
        return _new(cls, (PLACED, None, order, remaining))

    @classmethod
    def duplicate(cls, order: OrderView, remaining: int | None = None) -> OrderOutcome:
        return _new(cls, (DUPLICATE, None, order, remaining))

    @classmethod
    def rejected(cls, reason: str, order: OrderView | None = None, remaining: int | None = None) -> OrderOutcome:
        return _new(cls, (REJECTED, reason, order, remaining))

    @property
    def ok(self) -> bool:
        return self.status == PLACED

    @staticmethod
    def to_rows(outcomes: Iterable[OrderOutcome]) -> list[list]:
        return [[status, reason, None if order is None else [*order], remaining]
                for status, reason, order, remaining in outcomes]

    @staticmethod
    def from_rows(rows: Iterable[list]) -> list[OrderOutcome]:
        return [_new(OrderOutcome, (status, reason, None if order is None else _new(OrderView, order), remaining))
                for status, reason, order, remaining in rows]


class BalanceOutcome(NamedTuple):
    """A shard's answer to an `AdjustBalance`: the balance after it, or why it was refused."""

    reason: str | None
    balance: Balance | None


# ---- account shard -> book -------------------------------------------------

class BookOrder(NamedTuple):
    """An order whose funds are held, for matching. `budget`: a market buy's held money units;
    `stop_price` and `stop_kind`: a stop order, to wait for its trigger. `held`: the shard's
    hold events (encoded) when it sent the order before journaling them, for the book to
    carry in its record (`OrderHeld`); None when the hold was durable first."""

    order_id: int
    owner: str
    asset_id: str
    side: str
    quantity: int
    price: int | None
    time_in_force: str
    post_only: bool
    budget: int | None
    timestamp: int
    stop_price: int | None
    stop_kind: str | None
    held: list | None


class BookAmend(NamedTuple):
    """An amend, held and journaled by its shard, for the book: `reduced_by` lots fewer, and a new
    `price` (None: unchanged). It travels in the same `submit` calls as the shard's orders, in
    order, and `amend_id` is one of the shard's order ids, so the book's fence covers it too.
    Its row is shorter than a `BookOrder`'s, which tells them apart."""

    amend_id: int
    order_id: int
    owner: str
    asset_id: str
    reduced_by: int
    price: int | None
    post_only: bool
    timestamp: int


BOOK_AMEND_FIELDS = len(BookAmend._fields)


class BookCancel(NamedTuple):
    order_id: int
    asset_id: str
    timestamp: int
    reason: str  # the CloseReason value the order closes with: user_cancelled, user_suspended


# ---- book -> account shard -------------------------------------------------

class SettlementBatch(NamedTuple):
    """Book events for one shard's accounts, numbered per (asset, shard); `events` are encoded
    (`engine.encode_event`), as the book journaled them."""

    asset_id: str
    sequence: int
    events: list


class SubmitAnswer(NamedTuple):
    """A book's answer to a shard's orders: ids refused by the fence, and the shard's
    settlements not handed out yet (its orders' outcomes among them)."""

    fenced: list[int]
    settlements: list[SettlementBatch]

    def to_row(self) -> list:
        return [self.fenced, to_rows(self.settlements)]

    @staticmethod
    def from_row(row: list) -> SubmitAnswer:
        fenced, settlements = row
        return SubmitAnswer(fenced, from_rows(SettlementBatch, settlements))


class CancelAnswer(NamedTuple):
    """A book's answer to a shard's cancels: whether each order was open, and the shard's
    settlements not handed out yet (the releases among them)."""

    cancelled: list[bool]
    settlements: list[SettlementBatch]

    def to_row(self) -> list:
        return [self.cancelled, to_rows(self.settlements)]

    @staticmethod
    def from_row(row: list) -> CancelAnswer:
        cancelled, settlements = row
        return CancelAnswer(cancelled, from_rows(SettlementBatch, settlements))


# ---- book queries ----------------------------------------------------------

class MarketSummary(NamedTuple):
    """An asset's prices in ticks, None where there is none."""

    last_price: int | None
    best_bid: int | None
    best_ask: int | None


class BookDepth(NamedTuple):
    sequence: int
    bids: list[LevelRow]
    asks: list[LevelRow]


# ---- streams (actors/streams.py -> gateway), all as rows ---------------------

class LevelChange(NamedTuple):
    """A price level's new absolute state; 0 and 0: the level is gone."""

    side: str
    price: int
    quantity: int
    order_count: int


class StreamTrade(NamedTuple):
    """A trade as the public stream shows it (no owners, no order ids)."""

    trade_id: int
    price: int
    quantity: int
    taker_side: str
    timestamp: int


class BookChange(NamedTuple):
    """One buffered change of a book: the book's sequence `first_sequence`..`sequence`,
    `LevelChange` rows of the levels it touched, `StreamTrade` rows of its trades."""

    first_sequence: int
    sequence: int
    levels: list
    trades: list


class MarketPoll(NamedTuple):
    """A book actor's answer to `poll_market`: `kind` "updates" with `BookChange` rows in
    `changes`, or "snapshot" with the whole book (`LevelRow` rows) at `sequence` and the tape."""

    kind: str
    sequence: int
    bids: list
    asks: list
    trades: list
    changes: list

    @staticmethod
    def from_row(row: list) -> MarketPoll:
        if row[0] == "snapshot":
            _, sequence, bids, asks, trades = row
            return MarketPoll("snapshot", sequence, bids, asks, trades, [])
        return MarketPoll("updates", 0, [], [], [], from_rows(BookChange, row[1]))


class StreamEntry(NamedTuple):
    """One of a user's stream entries: `kind` "order" (an `OrderView` row) or "fill" (a `Transaction` row)."""

    sequence: int
    kind: str
    row: list


class OrderPoll(NamedTuple):
    """A shard's answer to `poll_orders`; `gap`: entries were missed (fell behind, or the shard restarted)."""

    incarnation: str
    sequence: int
    gap: bool
    entries: list[StreamEntry]

    @staticmethod
    def from_row(row: list) -> OrderPoll:
        incarnation, sequence, gap, entries = row
        return OrderPoll(incarnation, sequence, gap, from_rows(StreamEntry, entries))


class Candle(NamedTuple):
    """One candle in ticks, lots and µs (see engine.candles)."""

    open_time: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    trade_count: int
