"""A price level: resting orders at one price, in time priority.

Cancelled orders are removed lazily: a cancel zeroes the order's remaining
quantity in O(1) and the level's live count and quantity are kept exact; dead
entries are dropped when they reach the front of the queue, or all at once
(`drop_dead`) when too many have piled up behind live ones. `OrderBook` updates
these fields in place on its hot path rather than through methods here, so
every writer keeps the same rule: `quantity` and `count` cover live orders only.
"""

from __future__ import annotations

from collections import deque


class RestingOrder:
    """The book's view of an order on the book."""

    __slots__ = ("order_id", "owner", "side", "price", "remaining")

    def __init__(self, order_id: int, owner: str, side: str, price: int, remaining: int) -> None:
        self.order_id = order_id
        self.owner = owner
        self.side = side
        self.price = price
        self.remaining = remaining


_allocate = object.__new__


def new_resting_order(order_id: int, owner: str, side: str, price: int, remaining: int) -> RestingOrder:
    """Build a RestingOrder as its __init__ would, a third cheaper (no bound __init__ dispatch)."""
    order = _allocate(RestingOrder)
    order.order_id = order_id
    order.owner = owner
    order.side = side
    order.price = price
    order.remaining = remaining
    return order


class PriceLevel:
    """Orders resting at one price; `quantity` and `count` cover live ones only."""

    __slots__ = ("price", "orders", "quantity", "count")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: deque[RestingOrder] = deque()
        self.quantity = 0
        self.count = 0

    def drop_dead(self) -> None:
        """Drop every cancelled entry at once, keeping the live ones in time priority."""
        self.orders = deque(entry for entry in self.orders if entry.remaining)

    def row(self) -> tuple[int, int, int]:
        """Return the level as (price, quantity, order_count)."""
        return self.price, self.quantity, self.count

    def live_orders(self) -> list[RestingOrder]:
        return [entry for entry in self.orders if entry.remaining]
