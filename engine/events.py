"""Immutable events: every mutation of the engine returns the ones it caused.

Applying the same events, in order, to an empty `OrderBook` or `Accounts`
rebuilds the same state. They are NamedTuples because they are built on the
matching loop, where a NamedTuple costs less than half a frozen dataclass, and
they encode for a journal as `[kind, *fields]` (see `encode_event`).
Integers only: prices in ticks, quantities in lots, money in money units,
timestamps in microseconds since the epoch (passed in, never read here).
"""

from __future__ import annotations

from typing import Any, NamedTuple


# The book's events (one asset's stream).
class OrderRested(NamedTuple):
    order_id: int
    owner: str
    side: str
    price: int
    quantity: int
    timestamp: int


class TradeExecuted(NamedTuple):
    trade_id: int
    price: int
    quantity: int
    taker_side: str
    taker_order_id: int
    taker_owner: str
    maker_order_id: int
    maker_owner: str
    timestamp: int


class OrderClosed(NamedTuple):
    """A taker ended without resting, or a resting order or waiting stop was cancelled."""

    order_id: int
    owner: str
    status: str
    reason: str | None
    timestamp: int


class StopAccepted(NamedTuple):
    """A stop order waits off the book for its trigger. `price` None: a stop market order."""

    order_id: int
    owner: str
    side: str
    stop_kind: str  # "stop_loss" or "take_profit"
    stop_price: int
    price: int | None
    quantity: int
    time_in_force: str
    timestamp: int


class StopTriggered(NamedTuple):
    """A waiting stop's trigger held: it enters matching now; its trades and outcome follow."""

    order_id: int
    owner: str
    timestamp: int


class OrderAmended(NamedTuple):
    """An open order or waiting stop changed by amend `amend_id`: `reduced_by` lots fewer and,
    when `price` is not None, a new limit price. A resting order that moves leaves the book
    here and enters again as the events that follow say (trades, then rested or closed);
    one that only shrinks keeps its place."""

    order_id: int
    owner: str
    amend_id: int
    reduced_by: int
    price: int | None
    timestamp: int


class AmendRefused(NamedTuple):
    """The book could not carry out amend `amend_id` (the order closed meanwhile, the rest is
    too small, a post-only order would cross): nothing changed."""

    order_id: int
    owner: str
    amend_id: int
    reason: str
    timestamp: int


class OrderHeld(NamedTuple):
    """A shard's hold of an order it sent before its own journal held it (issue 12), carried
    in the book's record ahead of the order's own events: `events` are the shard's
    `OrderAccepted` and `FundsHeld`, encoded. Not a change to the book (its replay skips
    it); a shard that lost the hold in a crash applies it from here, one that kept it
    ignores it."""

    order_id: int
    owner: str
    events: list


# The accounts' events (one shard's stream).
class AssetListed(NamedTuple):
    asset_id: str
    tick_size: str
    lot_size: str
    name: str


class FundsDeposited(NamedTuple):
    username: str
    asset_id: str
    amount: int
    timestamp: int


class FundsWithdrawn(NamedTuple):
    username: str
    asset_id: str
    amount: int
    timestamp: int


class OrderAccepted(NamedTuple):
    order_id: int
    username: str
    asset_id: str
    order_type: str
    time_in_force: str
    post_only: bool
    quantity: int
    price: int | None
    client_order_id: str | None
    description: str | None
    timestamp: int
    # Added with record version 3; records of version 2 decode with these defaults.
    stop_price: int | None = None
    stop_kind: str | None = None


class FundsHeld(NamedTuple):
    order_id: int
    username: str
    asset_id: str
    amount: int


class SettlementApplied(NamedTuple):
    """Book events for this shard's accounts, numbered per (asset, shard)."""

    asset_id: str
    settlement_sequence: int
    events: tuple


class OrderAborted(NamedTuple):
    """An order that never reached its book: failed, and its hold released."""

    order_id: int
    reason: str
    timestamp: int


class AmendRequested(NamedTuple):
    """An amend on its way to the book: `amend_id` (drawn from the shard's order ids, so the
    book's fence covers it), the new total `quantity` and `price` (None: unchanged), and the
    `extra` money units held now for a buy that moves up (released if the book refuses)."""

    order_id: int
    amend_id: int
    quantity: int
    price: int | None
    extra: int
    timestamp: int


class AmendAborted(NamedTuple):
    """An amend that never reached its book (found by recovery): its extra hold released."""

    order_id: int
    amend_id: int
    timestamp: int


EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        OrderRested, TradeExecuted, OrderClosed, StopAccepted, StopTriggered, OrderAmended, AmendRefused,
        OrderHeld, AssetListed, FundsDeposited, FundsWithdrawn, OrderAccepted, FundsHeld, SettlementApplied,
        OrderAborted, AmendRequested, AmendAborted,
    )
}


def encode_event(event: NamedTuple) -> list[Any]:
    """Encode an event as `[kind, *fields]`, plain values a journal can store."""
    if type(event) is SettlementApplied:
        return ["SettlementApplied", event.asset_id, event.settlement_sequence,
                [encode_event(inner) for inner in event.events]]
    return [type(event).__name__, *event]


def decode_event(record: list[Any]) -> Any:
    """Decode what `encode_event` made."""
    kind = record[0]
    if kind == "SettlementApplied":
        return SettlementApplied(record[1], record[2], tuple(decode_event(inner) for inner in record[3]))
    return EVENT_TYPES[kind](*record[1:])


def event_owners(event: Any) -> tuple[str, ...]:
    """The accounts a book event touches: both sides of a trade, else the order's owner."""
    if type(event) is TradeExecuted:
        return event.taker_owner, event.maker_owner
    return (event.owner,)


def encoded_kind(encoded: list[Any]) -> str:
    """The kind of an event as `encode_event` made it, without decoding it."""
    return encoded[0]
