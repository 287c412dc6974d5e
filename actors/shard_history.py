"""An account shard's history side (mixed into `AccountShardActor`; not used alone).

Closed orders and fills leave memory once their history is durable on disk
(actors/history.py): until then they wait in `_closing` and `_unsaved`, each
entry dropped by `_forget_kept` once the write that keeps it is durable. Reads
of single orders, order lists and transactions merge memory and disk here.
"""

from __future__ import annotations

import logging

from actors.history import (
    closed_order_writes, format_writes, order_accepted_writes, transaction_writes,
)
from actors.messages import OrderView, Page, Transaction
from engine import OrderRecord
from engine.queries import order_matches, user_open_orders

log = logging.getLogger(__name__)


class ShardHistory:
    """Needs the shard's `accounts`, `history`, `store`, `index`, `_closing`, `_unsaved` and `_ensure_ready`."""

    async def get_order(self, username: str, order_id: int) -> OrderView | None:
        await self._ensure_ready()
        return self._user_view(username, order_id)

    async def list_orders(self, username: str, filters: dict, limit: int, offset: int) -> Page[OrderView]:
        """The user's orders, newest first: open ones from memory, closed ones from disk."""
        await self._ensure_ready()
        newer = [order.view() for order in user_open_orders(self.accounts, username, **filters)]
        closing = [order.view() for order in self._closing.values()
                   if order.username == username and order_matches(order, **filters)]
        if closing:
            newer = sorted(newer + closing, key=lambda view: (view.created_at, view.order_id), reverse=True)
        items, total = self.history.orders_page(username, **filters, limit=limit, offset=offset, newer=newer)
        return Page(items, total, offset + len(items) < total)

    async def transactions(self, username: str, asset_id: str, filters: dict, limit: int,
                           offset: int) -> Page[Transaction]:
        """The user's transactions in one asset, newest first, from disk and those not kept yet."""
        await self._ensure_ready()
        newer = sorted((item for item in self._unsaved.values()
                        if item.username == username and item.asset_id == asset_id),
                       key=lambda item: (item.timestamp, item.transaction_id), reverse=True)
        items, total = self.history.transactions_page(username, asset_id, **filters, limit=limit, offset=offset,
                                                      newer=newer)
        return Page(items, total, offset + len(items) < total)

    def _take_history(self, writes: list) -> tuple[list[OrderRecord], list[Transaction]]:
        """Add the orders closed and the fills made since the last call to `writes`; keep them in
        memory until those writes are durable."""
        closed, transactions = self.accounts.take_history()
        for order in closed:
            self._closing[order.order_id] = order
            writes += closed_order_writes(order)
        for transaction in transactions:
            self._unsaved[transaction.transaction_id] = transaction
            writes += transaction_writes(transaction)
        return closed, transactions

    def _forget_kept(self, closed: list[OrderRecord], transactions: list[Transaction]) -> None:
        for order in closed:
            if self._closing.get(order.order_id) is order:
                del self._closing[order.order_id]
        for transaction in transactions:
            self._unsaved.pop(transaction.transaction_id, None)

    def _view(self, order_id: int) -> OrderView | None:
        """An order of this shard as it is now: in memory while open or closing, else from disk."""
        order = self.accounts.orders.get(order_id) or self._closing.get(order_id)
        return order.view() if order is not None else self.history.order(order_id)

    def _user_view(self, username: str, order_id: int) -> OrderView | None:
        view = self._view(order_id)
        return view if view is not None and view.username == username else None

    def _earlier_order(self, username: str, client_order_id: str | None) -> OrderView | None:
        """The user's earlier order with this client order id (unique for ever), or None."""
        if client_order_id is None:
            return None
        order_id = self.accounts.client_order_ids.get((username, client_order_id))
        if order_id is None:
            order_id = self.history.order_id_for_client_id(username, client_order_id)
        return None if order_id is None else self._view(order_id)

    def _move_history_to_disk(self) -> None:
        """Keep on disk, once, the history a data directory from before held in its journal."""
        closed, transactions = self.accounts.take_history()
        writes = format_writes()
        for order in [*closed, *self.accounts.orders.values()]:
            writes += order_accepted_writes(order.username, order.client_order_id, order.order_id)
        for order in closed:
            writes += closed_order_writes(order)
        for transaction in transactions:
            writes += transaction_writes(transaction)
        self.store.writer.submit([], writes).result()
        if self.store.journal.last_sequence():
            self.store.write_snapshot_now()  # from here on, recovery starts from the hot state
        log.info("shard %d moved %d closed orders and %d transactions to disk", self.index, len(closed),
                 len(transactions))
