"""Price levels, and how the book records an order that rests.

A resting order is an *entry*: the plain tuple `(order_id, owner, side,
price, remaining)`. The book maps each live order id to its entry
(`OrderBook._orders`), and a level's queue holds the same entry objects in
time priority. Entries are immutable; a partial fill replaces the maker's
entry, in both places, with a copy carrying the new `remaining`.

A cancel takes the order out of the id map in O(1) and leaves its entry in
the queue, dead: an entry is live exactly when the id map holds that very
object (`is`, so an order id used again cannot revive an old entry). Dead
entries are dropped when they reach the front of the queue, or all at once
(`drop_dead`) when too many have piled up. A level's `quantity` and `count`
cover live entries only, and the book removes a level when `count` is 0.

Why plain tuples rather than one mutable object per order: a book holds
hundreds of thousands of long-lived orders, and CPython's cyclic garbage
collector keeps re-scanning long-lived mutable objects (it took about a tenth
of the matching time); it stops tracking an exact `tuple` of numbers and
strings the first time it sees one, but never a NamedTuple or other subclass.
`RestingOrder` is the snapshot that queries hand out; `can_fill` is the
fill-or-kill walk over levels.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

ORDER_ID, OWNER, SIDE, PRICE, REMAINING = range(5)  # the fields of an entry


class RestingOrder:
    """A snapshot of one order on the book, as the book's queries return it."""

    __slots__ = ("order_id", "owner", "side", "price", "remaining")

    def __init__(self, order_id: int, owner: str, side: str, price: int, remaining: int) -> None:
        self.order_id = order_id
        self.owner = owner
        self.side = side
        self.price = price
        self.remaining = remaining

    def __repr__(self) -> str:
        return (f"RestingOrder({self.order_id!r}, {self.owner!r}, {self.side!r}, {self.price!r}, "
                f"remaining={self.remaining!r})")


class LevelRow(NamedTuple):
    """One aggregated price level, as depth queries return it."""

    price: int
    quantity: int
    order_count: int


class PriceLevel:
    """Entries resting at one price; `quantity` and `count` cover live ones only."""

    __slots__ = ("price", "orders", "quantity", "count")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: deque[tuple] = deque()
        self.quantity = 0
        self.count = 0

    def live(self, open_orders: dict[int, tuple]) -> list[tuple]:
        """Return the live entries in time priority (`open_orders`: the book's id map)."""
        return [entry for entry in self.orders if open_orders.get(entry[ORDER_ID]) is entry]

    def drop_dead(self, open_orders: dict[int, tuple]) -> None:
        """Drop every dead entry at once, keeping the live ones in time priority."""
        self.orders = deque(self.live(open_orders))

    def replace(self, entry: tuple, remaining: int) -> tuple:
        """Put a copy of a live `entry` with `remaining` lots in its place; return the copy."""
        queue = self.orders
        index = 0
        if queue[0] is not entry:
            index = _find(queue, entry, max(0, len(queue) - _RECENT))
            if index is None:
                index = _find(queue, entry, 0)
        order_id, owner, side, price, _ = entry
        queue[index] = replacement = (order_id, owner, side, price, remaining)
        return replacement

    def row(self) -> LevelRow:
        """Return the level's aggregate."""
        return LevelRow(self.price, self.quantity, self.count)


_RECENT = 64  # the newest entries of a queue, looked through first: an amend mostly shrinks a recent order


def _find(queue: deque, entry: tuple, start: int) -> int | None:
    """The position of `entry` itself in `queue` from `start`, or None. `deque.index` compares in C;
    a dead entry equal in value (an order that moved away and back) may come first, so look on
    until the very object."""
    try:
        index = queue.index(entry, start)
        while queue[index] is not entry:
            index = queue.index(entry, index + 1)
    except ValueError:
        return None
    return index


def can_fill(levels: list[PriceLevel], open_orders: dict[int, tuple], quantity: int, owner: str,
             budget: int | None, money_per_tick_lot: int) -> bool:
    """Tell whether `quantity` can be taken from `levels`, in order, before the owner's own order.

    This is the fill-or-kill check: the same walk as matching, without trading. A
    `budget` (money units) limits each fill to the lots it still affords.
    """
    needed = quantity
    for level in levels:
        price = level.price
        for _, maker_owner, _, _, maker_left in level.live(open_orders):
            if maker_owner == owner:
                return False
            fill = min(maker_left, needed)
            if budget is not None:
                fill = min(fill, budget // (price * money_per_tick_lot))
                if not fill:
                    return False
                budget -= fill * price * money_per_tick_lot
            needed -= fill
            if not needed:
                return True
    return False
