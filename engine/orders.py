"""Order vocabulary and the order record as its owner sees it.

`OrderRecord` is owned by exactly one account shard's `Accounts`; the book
keeps its own lean view of resting orders. Statuses and reasons are the six
and the reasons of API.md.
"""

from __future__ import annotations

from enum import Enum


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


class CloseReason(str, Enum):
    USER_CANCELLED = "user_cancelled"
    IOC_EXPIRED = "ioc_expired"
    FOK_UNFILLABLE = "fok_unfillable"
    NO_LIQUIDITY = "no_liquidity"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    SELF_TRADE_PREVENTED = "self_trade_prevented"
    POST_ONLY_WOULD_MATCH = "post_only_would_match"
    RECOVERY_ABORTED = "recovery_aborted"


class OrderRecord:
    """One order as its user sees it, with the funds it still reserves."""

    __slots__ = (
        "order_id", "username", "asset_id", "order_type", "time_in_force", "post_only",
        "quantity", "price", "client_order_id", "description", "created_at", "updated_at",
        "status", "reason", "filled_quantity", "total_amount", "reserved",
    )

    def __init__(
        self, order_id: int, username: str, asset_id: str, order_type: OrderType,
        time_in_force: TimeInForce, post_only: bool, quantity: int, price: int | None,
        client_order_id: str | None, description: str | None, created_at: int,
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

    @property
    def side(self) -> Side:
        return self.order_type.side

    @property
    def remaining_quantity(self) -> int:
        return self.quantity - self.filled_quantity

    @property
    def is_open(self) -> bool:
        return self.status.is_open


    def to_record(self) -> list:
        """Encode as plain values for snapshots and digests."""
        return [
            self.order_id, self.username, self.asset_id, self.order_type.value,
            self.time_in_force.value, self.post_only, self.quantity, self.price,
            self.client_order_id, self.description, self.created_at, self.updated_at,
            self.status.value, self.reason.value if self.reason else None,
            self.filled_quantity, self.total_amount, self.reserved,
        ]

    @classmethod
    def from_record(cls, record: list) -> OrderRecord:
        """Decode what `to_record` made."""
        (order_id, username, asset_id, order_type, time_in_force, post_only, quantity, price,
         client_order_id, description, created_at, updated_at, status, reason,
         filled_quantity, total_amount, reserved) = record
        order = cls(order_id, username, asset_id, OrderType(order_type), TimeInForce(time_in_force),
                    post_only, quantity, price, client_order_id, description, created_at)
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
