"""A book's waiting stops: stop-loss and take-profit orders, off the book until their trigger.

A waiting stop is an *entry*, the plain tuple `(order_id, owner, side, stop_kind, stop_price,
price, quantity, time_in_force, placement)` (`price` None: a stop market order; `placement`
counts the book's stops, so it orders stops placed at the same trigger). The book checks
them after every trade against that trade's price (API.md, "Stop-loss and take-profit
orders"): a sell stop-loss and a buy take-profit trigger when the price falls to their stop
price, a sell take-profit and a buy stop-loss when it rises to it. So the stops live in two
sorted lists by the direction that triggers them:

- `_falling`: keys `(-stop_price, placement, order_id)` ascending: a falling price reaches
  the highest trigger first, and the first keys are those;
- `_rising`: keys `(stop_price, placement, order_id)` ascending: the lowest trigger first.

`triggered(price)` cuts the triggered prefix off each list in one slice and returns its
entries in the order they enter matching. Memory holds one entry and one key per waiting
stop, nothing per stop that has gone.
"""

from __future__ import annotations

from bisect import bisect_left, insort

from engine.orders import triggers_on_fall

ORDER_ID, OWNER, SIDE, KIND, STOP_PRICE, PRICE, QUANTITY, TIME_IN_FORCE, PLACEMENT = range(9)


def _key(entry: tuple) -> tuple[int, int, int]:
    stop_price = entry[STOP_PRICE]
    return (-stop_price if triggers_on_fall(entry[SIDE], entry[KIND]) else stop_price,
            entry[PLACEMENT], entry[ORDER_ID])


class WaitingStops:
    """The stops of one book, by the direction and price that trigger them, then placement."""

    __slots__ = ("entries", "placements", "_falling", "_rising")

    def __init__(self) -> None:
        self.entries: dict[int, tuple] = {}  # order id -> entry
        self.placements = 0  # stops ever placed on this book
        self._falling: list[tuple[int, int, int]] = []
        self._rising: list[tuple[int, int, int]] = []

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, order_id: int, owner: str, side: str, stop_kind: str, stop_price: int, price: int | None,
            quantity: int, time_in_force: str) -> tuple:
        """Make a stop wait; return its entry."""
        self.placements += 1
        entry = (order_id, owner, side, stop_kind, stop_price, price, quantity, time_in_force, self.placements)
        self._insert(entry)
        return entry

    def remove(self, order_id: int) -> tuple | None:
        """Stop a stop waiting (cancelled, or triggered); return its entry, or None."""
        entry = self.entries.pop(order_id, None)
        if entry is not None:
            keys = self._falling if triggers_on_fall(entry[SIDE], entry[KIND]) else self._rising
            key = _key(entry)
            del keys[bisect_left(keys, key)]
        return entry

    def amend(self, order_id: int, reduced_by: int, price: int | None) -> tuple:
        """Shrink a waiting stop by `reduced_by` lots and set a new limit `price` (None: kept); it
        keeps its trigger and its place."""
        entry = self.entries[order_id]
        new_price = entry[PRICE] if price is None else price
        self.entries[order_id] = amended = (*entry[:PRICE], new_price, entry[QUANTITY] - reduced_by,
                                            *entry[TIME_IN_FORCE:])
        return amended

    def triggered(self, price: int) -> list[tuple]:
        """Take out the stops whose trigger holds at trade price `price`, in the order they enter:
        falling ones highest trigger first, then rising ones lowest first, each then by placement.
        (Both kinds at once only happens at a book's first trade, when every stop could wait.)"""
        found: list[tuple] = []
        falling, rising = self._falling, self._rising
        if falling and -falling[0][0] >= price:
            cut = bisect_left(falling, (-price + 1,))
            found.extend(falling[:cut])
            del falling[:cut]
        if rising and rising[0][0] <= price:
            cut = bisect_left(rising, (price + 1,))
            found.extend(rising[:cut])
            del rising[:cut]
        pop = self.entries.pop
        return [pop(order_id) for _, _, order_id in found]

    def in_priority(self) -> list[tuple]:
        """Every waiting stop: falling ones, then rising ones, each in trigger order."""
        return [self.entries[order_id] for keys in (self._falling, self._rising) for _, _, order_id in keys]

    def to_state(self) -> dict:
        return {"stops": [list(entry) for entry in self.in_priority()], "stop_placements": self.placements}

    def load_state(self, state: dict) -> None:
        """Load `to_state`'s values; a state from before stops has none."""
        for entry in state.get("stops", ()):
            self._insert(tuple(entry))
        self.placements = state.get("stop_placements", 0)

    def _insert(self, entry: tuple) -> None:
        self.entries[entry[ORDER_ID]] = entry
        insort(self._falling if triggers_on_fall(entry[SIDE], entry[KIND]) else self._rising, _key(entry))
