"""An account shard's changes to open orders: amend and cancel-all.

`AccountShardActor` takes these methods from `ShardChanges`. An amend is held and
journaled here first (`AmendRequested`: the new quantity and price, and any extra USD
a buy moving up needs), then sent to its book among the shard's orders, in order, with
an id of the same sequence (the book's fence covers it). The book's verdict
(`OrderAmended` and what the move did, or `AmendRefused`) comes back in the order's
settlements like any fill; the caller is answered then. A crash in between is settled
by recovery: the verdict arrives with the missed settlements, or the amend never
reached its book and its extra hold goes back (engine/account_amends.py). One amend
per order at a time: a second waits for the first's verdict.

Cancel-all cancels the caller's open orders and waiting stops with one `cancel` call
per book, as a batch of cancels does.
"""

from __future__ import annotations

import asyncio
import time

from actors.config import book_actor_for, make_order_id
from actors.faults import crash_point
from actors.messages import AmendOrder, BookAmend, OrderOutcome, OrderView, from_rows
from engine import CloseReason, OrderRecord, RejectReason


def now_micros() -> int:
    return time.time_ns() // 1000


def decided(order: OrderRecord) -> bool:
    """The book has had its say: the order is on it, closed, or a stop waiting there."""
    return order.status.value != "pending" or order.stop_waiting


class ShardChanges:
    """Amend and cancel-all of `AccountShardActor` (mixed into it; not used alone)."""

    async def amend_orders(self, rows: list[list]) -> list[list]:
        """Amend each `AmendOrder` (rows) in turn; answer `OrderOutcome` rows once their books decided."""
        await self._ensure_ready()
        return OrderOutcome.to_rows(await asyncio.gather(*(self._amend(request)
                                                           for request in from_rows(AmendOrder, rows))))

    async def cancel_all(self, username: str, asset_id: str | None) -> list[OrderView]:
        """Cancel every open order and waiting stop of the user (of one asset when given), one call
        per book; answer those this cancelled (not those a fill closed meanwhile), oldest first."""
        await self._ensure_ready()
        orders = self.accounts.orders
        targets = [(position, orders[order_id])
                   for position, order_id in enumerate(self.accounts.orders_by_user.get(username, {}))
                   if asset_id is None or orders[order_id].asset_id == asset_id]
        if not targets:
            return []
        await self._cancel_open([order for _, order in targets], now_micros(), CloseReason.USER_CANCELLED)
        return [order.view() for _, order in targets if order.reason is not None
                and order.reason.value == "user_cancelled"]

    async def _amend(self, request: AmendOrder) -> OrderOutcome:
        # An amend is an order operation: it draws on the user's order rate limit, and a
        # suspended user's is refused (issue 18), as placements and cancels are.
        check = self.access.order_check
        left = None
        if check is not None:
            refused, left = check(request.username, time.monotonic())
            if refused is not None:
                return OrderOutcome.rejected(refused, None, left)
        outcome = await self._amend_now(request)
        return outcome._replace(remaining=left) if left is not None else outcome

    async def _amend_now(self, request: AmendOrder) -> OrderOutcome:
        order_id = request.order_id
        order = self.accounts.user_order(request.username, order_id)
        if order is not None:
            await self._wait(order_id, decided)
            while order_id in self.accounts.amends:  # one amend per order at a time
                await self._wait(order_id, lambda order: order.order_id not in self.accounts.amends)
            order = self.accounts.user_order(request.username, order_id)
        if order is None:  # unknown, another user's, or closed (and kept)
            closed = self._user_view(request.username, order_id)
            if closed is None:
                return OrderOutcome.rejected(RejectReason.ORDER_NOT_FOUND.value)
            return OrderOutcome.rejected(RejectReason.ORDER_NOT_OPEN.value, closed)
        amend_id = make_order_id(self.next_sequence, self.index)
        timestamp = now_micros()
        events = self.accounts.request_amend(request.username, order_id, amend_id, request.quantity,
                                             request.price, timestamp)
        if isinstance(events, RejectReason):
            return OrderOutcome.rejected(events.value, order.view() if events is RejectReason.ORDER_NOT_OPEN else None)
        self.next_sequence += 1
        amend = events[0]
        verdict = asyncio.get_running_loop().create_future()
        self._amend_waiters[amend_id] = verdict
        try:
            # Held and journaled before the book can act on it; no order overtakes it meanwhile
            # (`_unsent`: the book would fence its lower id).
            self._unsent += 1
            try:
                await self._journal(events)
                crash_point(self.config, "shard.after_amend_hold")
                book = book_actor_for(order.asset_id, self.config.book_actor_count)
                self._sender(book).send([BookAmend(
                    amend_id, order_id, order.username, order.asset_id, order.quantity - amend.quantity, amend.price,
                    order.post_only, timestamp)])
            finally:
                self._unsent -= 1
            reason = await verdict
        finally:
            self._amend_waiters.pop(amend_id, None)
        view = self._view(order_id)
        return OrderOutcome.rejected(reason, view) if reason is not None else OrderOutcome.placed(view)

    def _amend_verdict(self, event) -> None:
        """An `OrderAmended` or `AmendRefused` was applied: answer the amend waiting for it."""
        waiter = self._amend_waiters.get(event.amend_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(getattr(event, "reason", None))
