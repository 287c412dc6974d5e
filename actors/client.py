"""The typed async facade over the actors: what the gateway (and tests) call.

It routes by configuration (username → shard, asset → book actor), batches
concurrent order and cancel requests per shard into one Ray call, and always
awaits object refs, never blocking an event loop on `ray.get`. Values cross
it as plain integers and tuples; decimal strings belong to the gateway.
"""

from __future__ import annotations

import asyncio
from typing import Any


from actors.batching import Batcher
from actors.config import ServiceConfig, book_actor_for, check_layout, shard_for
from actors.remote import create_actors
from actors.senders import call_with_retry


class ServiceClient:
    """Routes calls to the registry, account shards and book actors of one service."""

    def __init__(self, config: ServiceConfig) -> None:
        check_layout(config)
        self.config = config
        self.registry, self.shards, self.books = create_actors(config)
        self._order_batchers = [Batcher(lambda items, s=s: s.place_orders.remote(items)) for s in self.shards]
        self._cancel_batchers = [Batcher(lambda items, s=s: s.cancel_orders.remote(items)) for s in self.shards]

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

    async def create_asset(self, record: list) -> str | None:
        return await self.registry.create_asset.remote(record)

    async def assets(self) -> list[list]:
        return await _idempotent(self.registry.assets_list)

    # ---- accounts ------------------------------------------------------

    async def adjust_balance(self, kind: str, username: str, asset_id: str, amount: int) -> tuple:
        (result,) = await self.shard(username).adjust_balances.remote([(kind, username, asset_id, amount)])
        return result

    async def place_order(self, request: tuple) -> tuple:
        """Place one order (see AccountShardActor.place_orders), batched with concurrent ones."""
        return await self._order_batchers[shard_for(request[0], self.config.shard_count)].submit(request)

    async def place_orders(self, username: str, requests: list[tuple]) -> list[tuple]:
        """Place a user's orders in one call, in order."""
        return await self.shard(username).place_orders.remote(requests)

    async def cancel_order(self, username: str, order_id: int) -> tuple:
        return await self._cancel_batchers[shard_for(username, self.config.shard_count)].submit(
            (username, order_id))

    async def get_order(self, username: str, order_id: int) -> list | None:
        return await _idempotent(self.shard(username).get_order, username, order_id)

    async def list_orders(self, username: str, filters: dict, limit: int, offset: int) -> tuple:
        return await _idempotent(self.shard(username).list_orders, username, filters, limit, offset)

    async def balances(self, username: str) -> dict:
        return await _idempotent(self.shard(username).balances, username)

    async def transactions(self, username: str, asset_id: str, filters: dict, limit: int, offset: int) -> tuple:
        return await _idempotent(self.shard(username).transactions, username, asset_id, filters, limit, offset)

    # ---- market data ---------------------------------------------------

    async def summaries(self) -> dict[str, tuple]:
        """Return {asset_id: (last_price, best_bid, best_ask)} for every asset."""
        merged: dict[str, tuple] = {}
        for part in await asyncio.gather(*(_idempotent(book.summaries) for book in self.books)):
            merged.update(part)
        return merged

    async def depth(self, asset_id: str, levels: int) -> tuple | None:
        return await _idempotent(self.book(asset_id).depth, asset_id, levels)

    async def trades(self, asset_id: str, limit: int) -> list | None:
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


def combine_audits(shard_reports: list[dict], book_orders: dict[str, list]) -> dict:
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
    shard_open = {order[0]: order for report in shard_reports for order in report["open_orders"]}
    book_open = {order[0]: (asset_id, order) for asset_id, orders in book_orders.items() for order in orders}
    for order_id, order in shard_open.items():
        resting = book_open.get(order_id)
        if resting is None:
            problems.append(f"open order {order_id} is not on its book")
        elif resting[1][4] != order[4] or resting[1][3] != order[3]:
            problems.append(f"order {order_id} rests with {resting[1][4]} at {resting[1][3]}, "
                            f"its owner sees {order[4]} at {order[3]}")
    for order_id in book_open.keys() - shard_open.keys():
        problems.append(f"book holds order {order_id} that no shard has open")
    return {"problems": problems, "totals": totals, "net_deposits": net,
            "open_orders": len(shard_open), "resting_orders": len(book_open)}


async def _idempotent(method, *args):
    """Call a method that is safe to repeat, again while its actor restarts."""
    return await call_with_retry(lambda: method.remote(*args), lambda: None)
