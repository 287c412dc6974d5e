"""Stops, their cascades and amends: the book's commands beyond plain matching.

`OrderBook` takes these methods from `StopsAndAmends`; they work on its state
(price levels, `stops`, `_orders`) through its own internals, and keep its
invariants (see engine/book.py). Rules (API.md, "Stop-loss and take-profit
orders" and "Changing open orders"):

- A stop waits in `stops` (engine/stops.py) until a trade's price reaches its
  trigger. The stops one order's trades trigger enter matching after that order
  is done, in trigger order (`WaitingStops.triggered`), each as a new order
  (`StopTriggered`, then its trades and outcome); the stops their trades
  trigger join the end of the same queue, and the queue runs empty before the
  command returns (`_cascade`). Its events come back in `SubmitResult.cascade`.
- An amend shrinks an order (`reduced_by` lots, never to nothing) in place,
  keeping its time priority, or moves it to a new price: it leaves the book and
  enters again like a new order with the same id (and may trade, and trigger
  stops). A post-only order that would cross is refused, as is an amend of an
  order that is not open any more: `AmendRefused`, nothing changed.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from engine.book_level import PRICE, REMAINING, SIDE
from engine.errors import BookIntegrityError, RejectReason
from engine.events import AmendRefused, OrderAmended, OrderRested, StopAccepted, StopTriggered, TradeExecuted
from engine.orders import STOP_KINDS, OrderStatus, TimeInForce, stop_triggered
from engine.stops import PRICE as STOP_LIMIT, QUANTITY as STOP_QUANTITY

_GTC, _IOC, _FOK = TimeInForce.GTC.value, TimeInForce.IOC.value, TimeInForce.FOK.value
_PENDING, _CONFIRMED, _PROCESSING = (OrderStatus.PENDING.value, OrderStatus.CONFIRMED.value,
                                     OrderStatus.PROCESSING.value)
_NOT_OPEN = RejectReason.ORDER_NOT_OPEN
_new = tuple.__new__
BUY = "buy"
_NO_CASCADE: tuple = ()


class SubmitResult(NamedTuple):
    """What matching did with one incoming order; `events` ends with its outcome, and
    `cascade` holds the events of the stops it triggered (`all_events`: both, in order)."""

    order_id: int
    status: str
    reason: str | None
    filled_quantity: int
    events: list
    cascade: list | tuple = _NO_CASCADE

    @property
    def trades(self) -> list[TradeExecuted]:
        """The incoming order's own trades."""
        return self[4][:-1]

    @property
    def all_events(self) -> list:
        return self[4] + list(self[5]) if self[5] else self[4]


class StopsAndAmends:
    """The stop and amend commands of `OrderBook` (mixed into it; not used alone)."""

    def submit_stop(self, order_id: int, owner: str, side: str, stop_kind: str, stop_price: int,
                    quantity: int, price: int | None = None, time_in_force: str = _GTC,
                    timestamp: int = 0) -> SubmitResult | RejectReason:
        """Make a stop order wait for its trigger (`price` None: a stop market sell, ioc).

        A stop whose trigger already holds is refused before it gets here (API.md); one whose
        trigger came to hold on the way (a trade in between) triggers at once."""
        if quantity <= 0:
            return RejectReason.INVALID_QUANTITY
        if order_id in self._orders or order_id in self.stops.entries:
            return RejectReason.DUPLICATE_ORDER_ID
        if stop_kind not in STOP_KINDS or stop_price <= 0 or time_in_force == _FOK:
            return RejectReason.INVALID_ORDER
        if price is None:
            if side == BUY or time_in_force != _IOC:
                return RejectReason.INVALID_ORDER
        elif price <= 0:
            return RejectReason.INVALID_PRICE
        entry = self.stops.add(order_id, owner, side, stop_kind, stop_price, price, quantity, time_in_force)
        self.sequence += 1
        accepted = StopAccepted(order_id, owner, side, stop_kind, stop_price, price, quantity, time_in_force,
                                timestamp)
        if not stop_triggered(side, stop_kind, stop_price, self.last_price):
            return _new(SubmitResult, (order_id, _PENDING, None, 0, [accepted], _NO_CASCADE))
        self.stops.remove(order_id)
        cascade = self._cascade([entry], timestamp)
        # It entered first: its own events follow its StopTriggered, up to its outcome.
        filled = 0
        for event in cascade[1:]:
            if type(event) is not TradeExecuted:
                break
            filled += event.quantity
        if type(event) is OrderRested:
            return _new(SubmitResult, (order_id, _PROCESSING if filled else _CONFIRMED, None, filled,
                                       [accepted], cascade))
        return _new(SubmitResult, (order_id, event.status, event.reason, filled, [accepted], cascade))

    def amend(self, amend_id: int, order_id: int, owner: str, reduced_by: int, price: int | None,
              post_only: bool = False, timestamp: int = 0) -> list:
        """Shrink an open order or waiting stop by `reduced_by` lots, and move it to `price` (None:
        it stays). A resting order that only shrinks keeps its time priority; one that moves
        enters again at the new price like a new order (trades, stops triggered and all). Answer
        the events: `OrderAmended` and what followed, or one `AmendRefused` and nothing changed."""
        entry = self._orders.get(order_id)
        if entry is None:
            stop = self.stops.entries.get(order_id)
            if stop is None:
                return [self._refuse(order_id, owner, amend_id, _NOT_OPEN.value, timestamp)]
            if stop[STOP_QUANTITY] <= reduced_by or (price is not None and stop[STOP_LIMIT] is None):
                return [self._refuse(order_id, owner, amend_id, RejectReason.INVALID_AMEND.value, timestamp)]
            self.stops.amend(order_id, reduced_by, price)
            self.sequence += 1
            return [OrderAmended(order_id, owner, amend_id, reduced_by, price, timestamp)]
        _, _, side, old_price, remaining = entry
        if remaining <= reduced_by:
            return [self._refuse(order_id, owner, amend_id, RejectReason.INVALID_AMEND.value, timestamp)]
        if price is None or price == old_price:
            level = (self._bids if side == BUY else self._asks)[old_price]
            level.quantity -= reduced_by
            self._orders[order_id] = level.replace(entry, remaining - reduced_by)
            self.sequence += 1
            return [OrderAmended(order_id, owner, amend_id, reduced_by, None, timestamp)]
        if post_only and self._crosses(side, price):
            return [self._refuse(order_id, owner, amend_id, RejectReason.POST_ONLY_WOULD_MATCH.value, timestamp)]
        self._remove(entry)
        self.sequence += 1
        amended = OrderAmended(order_id, owner, amend_id, reduced_by, price, timestamp)
        result = self._take(order_id, owner, side, remaining - reduced_by, price, _GTC, None, timestamp)
        return [amended, *result.events, *result.cascade]

    def _after_trades(self, result: SubmitResult, timestamp: int) -> SubmitResult:
        """Run the cascade of the stops an order's trades triggered; add its events to the result."""
        triggered = self._triggered_by(result[4])
        if not triggered:
            return result
        return result._replace(cascade=self._cascade(triggered, timestamp))

    def _triggered_by(self, events: list) -> list[tuple]:
        """The stops that these events' trades trigger, taken out, in the order they enter."""
        stops = self.stops
        waiting = stops.entries
        found: list[tuple] = []
        last = None
        for event in events:
            # A trade at the price of the one before it reaches no trigger that one did not.
            if type(event) is TradeExecuted and event.price != last and waiting:
                last = event.price
                found.extend(stops.triggered(last))
        return found

    def _cascade(self, triggered: list[tuple], timestamp: int) -> list:
        """Enter triggered stops one by one as new orders, queueing the stops they trigger in turn,
        until none is left; return every event of it."""
        queue = deque(triggered)
        events: list = []
        self._cascading = True
        try:
            while queue:
                order_id, owner, side, _, _, price, quantity, time_in_force = queue.popleft()[:8]
                events.append(StopTriggered(order_id, owner, timestamp))
                self.sequence += 1
                result = self._take(order_id, owner, side, quantity, price, time_in_force, None, timestamp)
                events.extend(result[4])
                queue.extend(self._triggered_by(result[4]))
        finally:
            self._cascading = False
        return events

    def _refuse(self, order_id: int, owner: str, amend_id: int, reason: str, timestamp: int) -> AmendRefused:
        self.sequence += 1
        return AmendRefused(order_id, owner, amend_id, reason, timestamp)

    def _apply_amended(self, event: OrderAmended) -> None:
        entry = self._orders.get(event.order_id)
        if entry is None:
            if event.order_id not in self.stops.entries:
                raise BookIntegrityError(f"amend of order {event.order_id} that is not open")
            self.stops.amend(event.order_id, event.reduced_by, event.price)
        elif event.price is None:
            level = (self._bids if entry[SIDE] == BUY else self._asks)[entry[PRICE]]
            level.quantity -= event.reduced_by
            self._orders[event.order_id] = level.replace(entry, entry[REMAINING] - event.reduced_by)
        else:
            self._remove(entry)  # it enters again as the events that follow say

