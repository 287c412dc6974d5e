"""Order vocabulary and the order record as its owner sees it.

`OrderRecord` is owned by exactly one account shard's `Accounts`; the book
keeps its own lean view of resting orders. Statuses and reasons are the six
and the reasons of API.md.
"""

from __future__ import annotations

from enum import Enum
from operator import attrgetter
from typing import NamedTuple

from engine.errors import Rejected, RejectReason

_new = tuple.__new__


class Side(str, Enum):
    BUY = "buy"
    SELL = "sell"


class OrderType(str, Enum):
    MARKET_BUY = "market_buy"
    MARKET_SELL = "market_sell"
    LIMIT_BUY = "limit_buy"
    LIMIT_SELL = "limit_sell"

    def __init__(self, value: str) -> None:
        # Plain attributes, not properties: they are read for every order.
        self.side = Side.BUY if value.endswith("buy") else Side.SELL
        self.is_market = value.startswith("market")
        # A market order takes what is there now; a limit order rests until cancelled.
        self.default_time_in_force = "ioc" if self.is_market else "gtc"


class TimeInForce(str, Enum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(str, Enum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    PROCESSING = "processing"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"

    def __init__(self, value: str) -> None:
        self.is_open = value in ("pending", "confirmed", "processing")


class StopKind(str, Enum):
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"


def triggers_on_fall(side: str, stop_kind: str) -> bool:
    """Tell whether a stop triggers when the price falls to its stop price (else when it rises):
    a sell stop-loss and a buy take-profit do; a sell take-profit and a buy stop-loss rise."""
    return (side == "sell") == (stop_kind == "stop_loss")


def stop_triggered(side: str, stop_kind: str, stop_price: int, last_price: int | None) -> bool:
    """Tell whether a stop's trigger holds at `last_price` (None, no trade yet: never)."""
    if last_price is None:
        return False
    return last_price <= stop_price if triggers_on_fall(side, stop_kind) else last_price >= stop_price


class CloseReason(str, Enum):
    USER_CANCELLED = "user_cancelled"
    IOC_EXPIRED = "ioc_expired"
    FOK_UNFILLABLE = "fok_unfillable"
    NO_LIQUIDITY = "no_liquidity"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    SELF_TRADE_PREVENTED = "self_trade_prevented"
    POST_ONLY_WOULD_MATCH = "post_only_would_match"
    RECOVERY_ABORTED = "recovery_aborted"
    USER_SUSPENDED = "user_suspended"


def check_order_shape(order_type: OrderType, time_in_force: TimeInForce, post_only: bool,
                      has_price: bool, has_stop_price: bool = False,
                      stop_kind: str | None = None) -> Rejected | None:
    """Return why these fields cannot make one order together, or None: the one place that
    says which combinations API.md allows (the gateway maps the answer to its error)."""
    if has_stop_price != (stop_kind is not None):
        return Rejected(RejectReason.INVALID_ORDER, "stop_price and stop_kind go together")
    if stop_kind is not None:
        if stop_kind not in STOP_KINDS:
            return Rejected(RejectReason.INVALID_ORDER, f"unknown stop_kind {stop_kind!r}")
        if order_type is OrderType.MARKET_BUY:
            return Rejected(RejectReason.INVALID_ORDER,
                            "a market_buy takes no stop: use a stop limit_buy, whose hold is known")
        if post_only or time_in_force is TimeInForce.FOK:
            return Rejected(RejectReason.INVALID_ORDER, "a stop order is gtc or ioc, never post_only")
    if order_type.is_market:
        if has_price:
            return Rejected(RejectReason.INVALID_ORDER, "A market order takes no price")
        if time_in_force is TimeInForce.GTC:
            return Rejected(RejectReason.INVALID_ORDER, "A market order is ioc or fok")
    elif not has_price:
        return Rejected(RejectReason.INVALID_ORDER, "A limit order needs a price")
    if post_only and (order_type.is_market or time_in_force is not TimeInForce.GTC):
        return Rejected(RejectReason.INVALID_ORDER, "post_only is for gtc limit orders only")
    return None


class OrderView(NamedTuple):
    """An order as its owner sees it, in plain values: what a shard answers about an order."""

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
    created_at: int
    updated_at: int
    status: str
    reason: str | None
    filled_quantity: int
    total_amount: int
    reserved: int
    # Stop orders (plain orders: None, None, None, False); views written before stops lack them.
    stop_price: int | None = None
    stop_kind: str | None = None
    triggered_at: int | None = None
    stop_waiting: bool = False  # its book holds it, waiting for the trigger

    @property
    def remaining_quantity(self) -> int:
        return self.quantity - self.filled_quantity


class OrderRecord:
    """One order as its user sees it, with the funds it still reserves."""

    __slots__ = (
        "order_id", "username", "asset_id", "order_type", "time_in_force", "post_only",
        "quantity", "price", "client_order_id", "description", "created_at", "updated_at",
        "status", "reason", "filled_quantity", "total_amount", "reserved",
        "stop_price", "stop_kind", "triggered_at", "stop_waiting",
    )

    def __init__(
        self, order_id: int, username: str, asset_id: str, order_type: OrderType,
        time_in_force: TimeInForce, post_only: bool, quantity: int, price: int | None,
        client_order_id: str | None, description: str | None, created_at: int,
        stop_price: int | None = None, stop_kind: str | None = None,
    ) -> None:
        self.order_id = order_id
        self.username = username
        self.asset_id = asset_id
        self.order_type = order_type
        self.time_in_force = time_in_force
        self.post_only = post_only
        self.quantity = quantity
        self.price = price
        self.client_order_id = client_order_id
        self.description = description
        self.created_at = created_at
        self.updated_at = created_at
        self.status = OrderStatus.PENDING
        self.reason: CloseReason | None = None
        self.filled_quantity = 0
        self.total_amount = 0
        # What this order still holds: money units for a buy, lots for a sell.
        self.reserved = 0
        self.stop_price = stop_price
        self.stop_kind = stop_kind
        self.triggered_at: int | None = None
        self.stop_waiting = False

    @property
    def side(self) -> Side:
        return self.order_type.side

    @property
    def remaining_quantity(self) -> int:
        return self.quantity - self.filled_quantity

    @property
    def is_open(self) -> bool:
        return self.status.is_open


    def view(self) -> OrderView:
        """Return the order as plain values, as of now."""
        # tuple.__new__ directly: the NamedTuple's generated __new__ wraps this very call at twice the cost.
        return _new(OrderView, (
            self.order_id, self.username, self.asset_id, self.order_type.value,
            self.time_in_force.value, self.post_only, self.quantity, self.price,
            self.client_order_id, self.description, self.created_at, self.updated_at,
            self.status.value, self.reason.value if self.reason else None,
            self.filled_quantity, self.total_amount, self.reserved,
            self.stop_price, self.stop_kind, self.triggered_at, self.stop_waiting,
        ))

    # Its fields in `OrderView`'s order, the enums as they are (orjson writes their values):
    # what `to_record` says at half the cost, for snapshots of many open orders.
    fields = attrgetter(*OrderView._fields)

    def to_record(self) -> list:
        """Encode as plain values for snapshots and digests (the fields of `OrderView`, in order)."""
        return list(self.view())

    @classmethod
    def from_record(cls, record: list) -> OrderRecord:
        """Decode what `to_record` made."""
        (order_id, username, asset_id, order_type, time_in_force, post_only, quantity, price,
         client_order_id, description, created_at, updated_at, status, reason,
         filled_quantity, total_amount, reserved, stop_price, stop_kind, triggered_at,
         stop_waiting) = OrderView(*record)
        order = cls(order_id, username, asset_id, OrderType(order_type), TimeInForce(time_in_force),
                    post_only, quantity, price, client_order_id, description, created_at,
                    stop_price, stop_kind)
        order.triggered_at = triggered_at
        order.stop_waiting = stop_waiting
        order.updated_at = updated_at
        order.status = OrderStatus(status)
        order.reason = CloseReason(reason) if reason else None
        order.filled_quantity = filled_quantity
        order.total_amount = total_amount
        order.reserved = reserved
        return order


ORDER_TYPES: dict[str, OrderType] = dict(OrderType._value2member_map_)
TIMES_IN_FORCE: dict[str, TimeInForce] = dict(TimeInForce._value2member_map_)
STATUSES: dict[str, OrderStatus] = dict(OrderStatus._value2member_map_)
STOP_KINDS: frozenset[str] = frozenset(StopKind._value2member_map_)
