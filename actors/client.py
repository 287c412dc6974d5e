"""The typed async facade over the actors: what the gateway (and tests) call.

It routes by configuration (username → shard, asset → book actor), batches
concurrent order and cancel requests per shard into one Ray call, and always
awaits object refs, never blocking an event loop on `ray.get`. Values cross
it as the named messages of actors/messages.py, in integers; decimal strings
belong to the gateway.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any


from actors.coalescing import CoalescingQueue
from actors.config import ServiceConfig, book_actor_for, check_layout, shard_for
from actors.messages import (
    AdjustBalance, Balance, BalanceOutcome, BookDepth, CancelOrder, MarketSummary, OrderOutcome, OrderView,
    Page, PlaceOrder, RestingOrder, TradeExecuted, Transaction, to_rows,
)
from actors.remote import create_actors
from actors.retry import call_with_retry
from engine import AssetSpec
from engine.queries import OpenOrder


class ServiceClient:
    """Routes calls to the registry, account shards and book actors of one service."""

    def __init__(self, config: ServiceConfig) -> None:
        check_layout(config)
        self.config = config
        self.registry, self.shards, self.books = create_actors(config)
        self._order_queues = [CoalescingQueue(partial(_outcomes, shard.place_orders)) for shard in self.shards]
        self._cancel_queues = [CoalescingQueue(partial(_outcomes, shard.cancel_orders)) for shard in self.shards]

    async def wait_ready(self) -> None:
        """Wait until every actor has recovered (books, then shards, then the registry)."""
        await asyncio.gather(*(_idempotent(book.ready) for book in self.books))
        await asyncio.gather(*(_idempotent(shard.ready) for shard in self.shards))
        await _idempotent(self.registry.ready)

    def shard(self, username: str) -> Any:
        return self.shards[shard_for(username, self.config.shard_count)]

    def book(self, asset_id: str) -> Any:
        return self.books[book_actor_for(asset_id, self.config.book_actor_count)]

    # ---- registry ------------------------------------------------------

    async def create_user(self, username: str, key_hash: str, created_at: int) -> str | None:
        return await self.registry.create_user.remote(username, key_hash, created_at)

    async def authenticate(self, key_hash: str) -> str | None:
        return await _idempotent(self.registry.authenticate, key_hash)

    async def user_exists(self, username: str) -> bool:
        return await _idempotent(self.registry.user_exists, username)

    async def create_asset(self, spec: AssetSpec) -> str | None:
        return await self.registry.create_asset.remote(spec)

    async def assets(self) -> list[AssetSpec]:
        return await _idempotent(self.registry.assets_list)

    # ---- accounts ------------------------------------------------------

    async def adjust_balance(self, request: AdjustBalance) -> BalanceOutcome:
        (result,) = await self.shard(request.username).adjust_balances.remote([request])
        return result

    async def place_order(self, request: PlaceOrder) -> OrderOutcome:
        """Place one order (see AccountShardActor.place_orders), batched with concurrent ones."""
        return await self._order_queues[shard_for(request.username, self.config.shard_count)].submit(request)

    async def place_orders(self, username: str, requests: list[PlaceOrder]) -> list[OrderOutcome]:
        """Place a user's orders in one call, in order."""
        return await _outcomes(self.shard(username).place_orders, requests)

    async def cancel_order(self, request: CancelOrder) -> OrderOutcome:
        return await self._cancel_queues[shard_for(request.username, self.config.shard_count)].submit(request)

    async def get_order(self, username: str, order_id: int) -> OrderView | None:
        return await _idempotent(self.shard(username).get_order, username, order_id)

    async def list_orders(self, username: str, filters: dict, limit: int, offset: int) -> Page[OrderView]:
        return await _idempotent(self.shard(username).list_orders, username, filters, limit, offset)

    async def balances(self, username: str) -> dict[str, Balance]:
        return await _idempotent(self.shard(username).balances, username)

    async def transactions(self, username: str, asset_id: str, filters: dict, limit: int,
                           offset: int) -> Page[Transaction]:
        return await _idempotent(self.shard(username).transactions, username, asset_id, filters, limit, offset)

    # ---- market data ---------------------------------------------------

    async def summaries(self) -> dict[str, MarketSummary]:
        """Return every asset's last price and best bid and ask."""
        merged: dict[str, MarketSummary] = {}
        for part in await asyncio.gather(*(_idempotent(book.summaries) for book in self.books)):
            merged.update(part)
        return merged

    async def depth(self, asset_id: str, levels: int) -> BookDepth | None:
        return await _idempotent(self.book(asset_id).depth, asset_id, levels)

    async def trades(self, asset_id: str, limit: int) -> list[TradeExecuted] | None:
        return await _idempotent(self.book(asset_id).trades, asset_id, limit)

    # ---- operations ----------------------------------------------------

    async def flush(self) -> None:
        """Wait until every change made so far, in every actor, is durable."""
        await asyncio.gather(*(actor.flush.remote() for actor in (self.registry, *self.shards, *self.books)))

    async def drain(self) -> None:
        """Wait until every settlement made so far has reached its shard."""
        await asyncio.gather(*(_idempotent(book.drained) for book in self.books))

    async def audit(self) -> dict:
        """Check the invariants of DESIGN.md across every shard and book; return the report.

        Call it when no orders are in flight: it first waits for settlements to arrive.
        """
        await self.drain()
        shard_reports = await asyncio.gather(*(_idempotent(shard.audit) for shard in self.shards))
        book_orders: dict[str, list] = {}
        for part in await asyncio.gather(*(_idempotent(book.open_orders) for book in self.books)):
            book_orders.update(part)
        return combine_audits(shard_reports, book_orders)


def combine_audits(shard_reports: list[dict], book_orders: dict[str, list[RestingOrder]]) -> dict:
    """Join the shards' audits with the books' open orders into one verdict."""
    problems = [problem for report in shard_reports for problem in report["problems"]]
    totals: dict[str, int] = {}
    net: dict[str, int] = {}
    for report in shard_reports:
        for asset_id, amount in report["totals"].items():
            totals[asset_id] = totals.get(asset_id, 0) + amount
        for asset_id, amount in report["net_deposits"].items():
            net[asset_id] = net.get(asset_id, 0) + amount
    for asset_id in set(totals) | set(net):
        if totals.get(asset_id, 0) != net.get(asset_id, 0):
            problems.append(f"{asset_id}: balances add up to {totals.get(asset_id, 0)}, "
                            f"deposits minus withdrawals to {net.get(asset_id, 0)}")
    shard_open: dict[int, OpenOrder] = {order.order_id: order for report in shard_reports
                                        for order in report["open_orders"]}
    book_open = {order.order_id: order for orders in book_orders.values() for order in orders}
    for order_id, order in shard_open.items():
        resting = book_open.get(order_id)
        if resting is None:
            problems.append(f"open order {order_id} is not on its book")
        elif resting.remaining != order.remaining_quantity or resting.price != order.price:
            problems.append(f"order {order_id} rests with {resting.remaining} at {resting.price}, "
                            f"its owner sees {order.remaining_quantity} at {order.price}")
    for order_id in book_open.keys() - shard_open.keys():
        problems.append(f"book holds order {order_id} that no shard has open")
    return {"problems": problems, "totals": totals, "net_deposits": net,
            "open_orders": len(shard_open), "resting_orders": len(book_open)}


async def _outcomes(method, requests: list) -> list[OrderOutcome]:
    """Call a shard's `place_orders` or `cancel_orders` with requests; return their outcomes."""
    return OrderOutcome.from_rows(await method.remote(to_rows(requests)))


async def _idempotent(method, *args):
    """Call a method that is safe to repeat, again while its actor restarts."""
    return await call_with_retry(lambda: method.remote(*args), lambda: None)
