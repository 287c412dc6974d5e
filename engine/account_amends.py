"""Amends as the accounts see them: checked and held here, carried out by the book.

`Accounts` takes these methods from `AccountAmends`. An amend (API.md, "Changing
open orders") goes in three steps, each an event of the shard's stream, so that
it is all or nothing across a crash:

1. `request_amend` checks it against the order as the owner sees it and answers
   one `AmendRequested`: the new total quantity, the new price (None: unchanged),
   and the `extra` USD a buy that moves up needs beyond its current hold, held
   now, before the book can trade at the new price. `amends` keeps it until step 2.
2. The book carries it out or refuses it, and its verdict comes back in the
   order's settlements: `OrderAmended` re-sizes the hold to what the order now
   reserves (a sell: its remaining lots; a buy: price × remaining), or
   `AmendRefused` gives the extra back. A fill between the request and the
   verdict is settled at the price the order had then.
3. An amend that never reached its book (the shard crashed in between, and the
   book's fence now refuses it) ends with `AmendAborted` at recovery: the extra
   goes back, nothing else changed.

An order has at most one amend under way (its shard serializes them).
"""

from __future__ import annotations

from engine.errors import EngineError, RejectReason
from engine.events import AmendAborted, AmendRequested, OrderAmended
from engine.numbers import MAX_UNITS, USD, AssetSpec
from engine.orders import Side


class AccountAmends:
    """The amend commands and events of `Accounts` (mixed into it; not used alone)."""

    def request_amend(self, username: str, order_id: int, amend_id: int, quantity: int | None,
                      price: int | None, timestamp: int) -> list | RejectReason:
        """Check an amend of the user's open order (a new total `quantity`, a new limit `price`,
        None: unchanged) and hold what a buy moving up needs; answer its `AmendRequested`."""
        order = self.user_order(username, order_id)
        if order is None:
            return RejectReason.ORDER_NOT_FOUND
        if not order.is_open or order_id in self.amends:
            return RejectReason.ORDER_NOT_OPEN if not order.is_open else RejectReason.INVALID_AMEND
        if order.price is None and not order.stop_waiting:
            return RejectReason.INVALID_AMEND  # a market order is never open for long
        if quantity is not None:
            if quantity > order.quantity or quantity <= order.filled_quantity:
                return RejectReason.INVALID_AMEND
            if quantity == order.quantity:
                quantity = None
        if price is not None:
            if order.price is None:
                return RejectReason.INVALID_AMEND  # a stop market order has no price to change
            if not 0 < price <= MAX_UNITS:
                return RejectReason.INVALID_PRICE
            if price == order.price:
                price = None
        if quantity is None and price is None:
            return RejectReason.INVALID_AMEND
        extra = 0
        if price is not None and order.side == Side.BUY:
            remaining = (quantity if quantity is not None else order.quantity) - order.filled_quantity
            extra = max(0, self.assets[order.asset_id].notional(price, remaining) - order.reserved)
            if extra > self.balance(username, USD).available:
                return RejectReason.INSUFFICIENT_BALANCE
        return self._emit([AmendRequested(order_id, amend_id, order.quantity if quantity is None else quantity,
                                          price, extra, timestamp)])

    def abort_amends(self, timestamp: int) -> list:
        """End every amend whose book's verdict has not come back (recovery, once the book's fence
        covers them all): give back their extra holds."""
        return self._emit([AmendAborted(amend.order_id, amend.amend_id, timestamp) for amend in self.amends.values()])

    # ---- applying ------------------------------------------------------

    def _apply_amend_requested(self, event: AmendRequested) -> None:
        order = self.orders[event.order_id]
        self.amends[event.order_id] = event
        self.last_order_id = max(self.last_order_id, event.amend_id)
        if event.extra:
            self._move(order.username, USD, -event.extra, event.extra, None)
            order.reserved += event.extra

    def _apply_amended(self, spec: AssetSpec, event: OrderAmended) -> None:
        """The book carried out an amend: shrink the order, move its price, re-size its hold."""
        order = self.orders.get(event.order_id)
        self.amends.pop(event.order_id, None)
        if order is None or not order.is_open:
            return
        order.quantity -= event.reduced_by
        if event.price is not None:
            order.price = event.price
        order.updated_at = event.timestamp
        if order.side == Side.BUY:
            held_asset, keeps = USD, spec.notional(order.price, order.remaining_quantity)
        else:
            held_asset, keeps = order.asset_id, order.remaining_quantity
        released = order.reserved - keeps
        if released < 0:
            raise EngineError(f"amend of order {order.order_id} needs {-released} more than it holds")
        if released:
            self._move(order.username, held_asset, released, -released, event.timestamp)
            order.reserved = keeps

    def _end_amend(self, order_id: int, amend_id: int) -> None:
        """An amend refused by the book or aborted by recovery: give its extra hold back."""
        amend = self.amends.get(order_id)
        if amend is None or amend.amend_id != amend_id:
            return
        del self.amends[order_id]
        order = self.orders.get(order_id)
        if amend.extra and order is not None:
            self._move(order.username, USD, amend.extra, -amend.extra, None)
            order.reserved -= amend.extra
