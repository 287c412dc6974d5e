"""Orders that need an actor whose node is gone are refused at once (a retryable 503).

A shard answers a batch of orders once every book in it has decided, and this
gateway process keeps one call in flight per shard (actors/client.py): an order
for a book whose node is gone would hold every later order of that shard sent
through this process until the node returns. Knowing which actors wait for
their node (`Runtime` reads actors.remote.placement once a second), the gateway
refuses such orders and cancels before they reach the shard, so the others
keep flowing; the client retries them by `client_order_id` later. Orders
already in flight when the node went still wait for it, and hold their shard's
queue in that process until it is back (see bench/README.md, issue 15).
"""

from __future__ import annotations

from actors.client import ServiceClient
from actors.config import book_actor_for, shard_for
from actors.messages import CancelOrder, OrderOutcome, PlaceOrder
from gateway.errors import ApiError


class AwayAwareClient(ServiceClient):
    """The facade, refusing orders and cancels whose shard or book waits for its node."""

    away: frozenset[str] = frozenset()

    def note_away(self, streams: set[str]) -> None:
        """Record which actors wait for their node now (`registry`, `shard-N`, `book-N`)."""
        self.away = frozenset(streams)

    def _refuse_if_away(self, username: str, asset_ids) -> None:
        away = self.away
        if not away:  # the usual case: one attribute read per order
            return
        needed = {f"shard-{shard_for(username, self.config.shard_count)}",
                  *(f"book-{book_actor_for(asset_id, self.config.book_actor_count)}" for asset_id in asset_ids)}
        if waiting := sorted(needed & away):
            raise ApiError(503, "SERVICE_UNAVAILABLE",
                           f"{', '.join(waiting)} waits for its node to return; nothing was placed or "
                           f"cancelled: retry later with the same client_order_id", headers={"Retry-After": "5"})

    async def place_order(self, request: PlaceOrder) -> OrderOutcome:
        self._refuse_if_away(request.username, (request.asset_id,))
        return await super().place_order(request)

    async def place_orders(self, username: str, requests: list[PlaceOrder]) -> list[OrderOutcome]:
        self._refuse_if_away(username, {request.asset_id for request in requests})
        return await super().place_orders(username, requests)

    async def cancel_order(self, request: CancelOrder) -> OrderOutcome:
        self._refuse_if_away(request.username, ())
        if any(stream.startswith("book-") for stream in self.away):
            # A cancel names no asset: while a book is away, ask the shard which book it needs.
            order = await self.get_order(request.username, request.order_id)
            if order is not None:
                self._refuse_if_away(request.username, (order.asset_id,))
        return await super().cancel_order(request)
