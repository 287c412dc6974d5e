"""A price level: resting orders at one price, in time priority.

Cancelled orders are removed lazily: a cancel zeroes the order's remaining
quantity in O(1) and the level's live count and quantity are kept exact; dead
entries are dropped when they reach the front of the queue, or all at once
when too many have piled up behind live ones.
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


class PriceLevel:
    """Orders resting at one price; `quantity` and `count` cover live ones only."""

    __slots__ = ("price", "orders", "quantity", "count")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: deque[RestingOrder] = deque()
        self.quantity = 0
        self.count = 0

    def append(self, order: RestingOrder) -> None:
        self.orders.append(order)
        self.quantity += order.remaining
        self.count += 1

    def remove(self, order: RestingOrder) -> None:
        """Take a live order out; its entry stays behind as a dead one."""
        self.quantity -= order.remaining
        self.count -= 1
        order.remaining = 0
        if len(self.orders) > 2 * self.count + 32:
            self.orders = deque(entry for entry in self.orders if entry.remaining)

    def live_orders(self) -> list[RestingOrder]:
        return [entry for entry in self.orders if entry.remaining]
