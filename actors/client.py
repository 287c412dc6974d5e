"""The typed async facade over the actors: what the gateway (and tests) call.

It routes by configuration (username → shard, asset → book actor), batches
concurrent order and cancel requests per shard into one Ray call, and always
awaits object refs, never blocking an event loop on `ray.get`. Values cross
it as the named messages of actors/messages.py, in integers; decimal strings
belong to the gateway.

Given `call_times`, it times every awaited actor call as its caller sees it (Ray's
round trip, the actor's queue and work, retries across a restart), per actor
(`shard-N`, `book-N`, `registry`) and method, in plain integers on the event loop's
thread; the gateway drains them into its metrics.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from actors.coalescing import CoalescingQueue
from actors.config import ServiceConfig, book_actor_for, check_layout, shard_for
from actors.messages import (
    AdjustBalance, AmendOrder, Balance, BalanceOutcome, BookDepth, CancelOrder, Candle, MarketPoll, MarketSummary,
    OrderOutcome, OrderPoll, OrderView, Page, PlaceOrder, RestingOrder, TradeExecuted, Transaction, from_rows,
    to_rows,
)
from actors.remote import create_actors
from actors.retry import call_with_retry
from engine import AssetSpec
from engine.queries import OpenOrder

REGISTRY = "registry"
# Upper bounds (seconds) of the actor-call histogram's buckets; the last bucket is +Inf.
CALL_SECONDS_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class CallTimes:
    """Durations of awaited actor calls per (actor, method): [sum, count per bucket...]."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], list] = {}

    def record(self, actor: str, method: str, seconds: float) -> None:
        entry = self.entries.get((actor, method))
        if entry is None:
            entry = self.entries[(actor, method)] = [0.0] + [0] * (len(CALL_SECONDS_BOUNDS) + 1)
        entry[0] += seconds
        entry[1 + bisect_left(CALL_SECONDS_BOUNDS, seconds)] += 1

    def drain(self) -> dict[tuple[str, str], list]:
        """Return what was recorded since the last drain, and start again from zero."""
        entries, self.entries = self.entries, {}
        return entries


class ServiceClient:
    """Routes calls to the registry, account shards and book actors of one service."""

    def __init__(self, config: ServiceConfig, call_times: CallTimes | None = None) -> None:
        check_layout(config)
        self.config = config
        self.call_times = call_times
        self.registry, self.shards, self.books = create_actors(config)
        self.shard_names = [f"shard-{index}" for index in range(len(self.shards))]
        self.book_names = [f"book-{index}" for index in range(len(self.books))]
        self._order_queues = [CoalescingQueue(partial(self._outcomes, name, shard.place_orders, "place_orders"))
                              for name, shard in zip(self.shard_names, self.shards)]
        self._cancel_queues = [CoalescingQueue(partial(self._outcomes, name, shard.cancel_orders, "cancel_orders"))
                               for name, shard in zip(self.shard_names, self.shards)]
        self._amend_queues = [CoalescingQueue(partial(self._outcomes, name, shard.amend_orders, "amend_orders"))
                              for name, shard in zip(self.shard_names, self.shards)]

    async def wait_ready(self) -> None:
        """Wait until every actor has recovered (books, then shards, then the registry)."""
        await asyncio.gather(*(self._ask(name, book, "ready") for name, book in zip(self.book_names, self.books)))
        await asyncio.gather(*(self._ask(name, shard, "ready")
                               for name, shard in zip(self.shard_names, self.shards)))
        await self._ask(REGISTRY, self.registry, "ready")

    def shard(self, username: str) -> Any:
        return self.shards[shard_for(username, self.config.shard_count)]

    def book(self, asset_id: str) -> Any:
        return self.books[book_actor_for(asset_id, self.config.book_actor_count)]

    async def _ask_shard(self, username: str, method: str, *args):
        index = shard_for(username, self.config.shard_count)
        return await self._ask(self.shard_names[index], self.shards[index], method, *args)

    async def _ask_book(self, asset_id: str, method: str, *args):
        index = book_actor_for(asset_id, self.config.book_actor_count)
        return await self._ask(self.book_names[index], self.books[index], method, *args)

    # ---- registry ------------------------------------------------------

    async def create_user(self, username: str, key_hash: str, created_at: int) -> list:
        """`[refusal or None, key_id]`."""
        return await self._timed(REGISTRY, "create_user",
                                 partial(self.registry.create_user.remote, username, key_hash, created_at))

    async def authenticate(self, key_hash: str) -> list | None:
        """`[username, key_id, suspended, epoch]` of a live key, or None."""
        return await self._ask(REGISTRY, self.registry, "authenticate", key_hash)

    async def user_exists(self, username: str) -> bool:
        return await self._ask(REGISTRY, self.registry, "user_exists", username)

    async def user(self, username: str) -> dict | None:
        return await self._ask(REGISTRY, self.registry, "user", username)

    async def create_key(self, username: str, key_hash: str, created_at: int) -> list:
        """`[refusal or None, key_id]`."""
        return await self._timed(REGISTRY, "create_key",
                                 partial(self.registry.create_key.remote, username, key_hash, created_at))

    async def revoke_key(self, username: str, key_id: str, timestamp: int) -> str | None:
        return await self._ask(REGISTRY, self.registry, "revoke_key", username, key_id, timestamp)

    async def rotate_key(self, key_hash: str, new_key_hash: str, timestamp: int) -> list:
        """`[refusal or None, username, new key_id]`."""
        return await self._timed(REGISTRY, "rotate_key",
                                 partial(self.registry.rotate_key.remote, key_hash, new_key_hash, timestamp))

    async def set_suspended(self, username: str, suspended: bool, timestamp: int) -> list:
        """`[refusal or None, the user]`; safe to repeat."""
        return await self._ask(REGISTRY, self.registry, "set_suspended", username, suspended, timestamp)

    async def touch_keys(self, key_hashes: list[str], timestamp: int) -> None:
        await self._ask(REGISTRY, self.registry, "touch_keys", key_hashes, timestamp)

    async def access_changes(self, incarnation: str | None, epoch: int, timeout: float) -> list:
        """Long-poll the key revocations and suspensions past `epoch` (not timed: see streams)."""
        return await self.registry.access_changes.remote(incarnation, epoch, timeout)

    async def log_action(self, actor: str, action: str, target: str, details: dict, timestamp: int) -> int:
        """Journal an audit-log entry of an action done elsewhere (a deposit, a withdrawal)."""
        return await self._timed(REGISTRY, "log_action",
                                 partial(self.registry.log_action.remote, actor, action, target, details, timestamp))

    async def audit_page(self, action: str | None, username: str | None, limit: int, offset: int) -> list:
        """`[entries, total]`, newest first."""
        return await self._ask(REGISTRY, self.registry, "audit_page", action, username, limit, offset)

    async def admit_read(self, username: str) -> int | None:
        """Take a read token at the user's shard: tokens left, or None when limited."""
        return await self._ask_shard(username, "admit_read", username)

    async def create_asset(self, spec: AssetSpec, timestamp: int | None = None,
                           details: dict | None = None) -> str | None:
        """Define an asset; `details` go to its audit entry."""
        timestamp = time.time_ns() // 1000 if timestamp is None else timestamp
        return await self._timed(REGISTRY, "create_asset",
                                 partial(self.registry.create_asset.remote, spec, timestamp, details))

    async def assets(self) -> list[AssetSpec]:
        return await self._ask(REGISTRY, self.registry, "assets_list")

    # ---- accounts ------------------------------------------------------

    async def adjust_balance(self, request: AdjustBalance) -> BalanceOutcome:
        index = shard_for(request.username, self.config.shard_count)
        (result,) = await self._timed(self.shard_names[index], "adjust_balances",
                                      partial(self.shards[index].adjust_balances.remote, [request]))
        return result

    async def place_order(self, request: PlaceOrder) -> OrderOutcome:
        """Place one order (see AccountShardActor.place_orders), batched with concurrent ones."""
        return await self._order_queues[shard_for(request.username, self.config.shard_count)].submit(request)

    async def place_orders(self, username: str, requests: list[PlaceOrder]) -> list[OrderOutcome]:
        """Place a user's orders in one call, in order."""
        index = shard_for(username, self.config.shard_count)
        return await self._outcomes(self.shard_names[index], self.shards[index].place_orders, "place_orders",
                                    requests)

    async def cancel_order(self, request: CancelOrder) -> OrderOutcome:
        return await self._cancel_queues[shard_for(request.username, self.config.shard_count)].submit(request)

    async def amend_order(self, request: AmendOrder) -> OrderOutcome:
        """Amend an open order (see actors/shard_changes.py), batched with concurrent ones."""
        return await self._amend_queues[shard_for(request.username, self.config.shard_count)].submit(request)

    async def cancel_all(self, username: str, asset_id: str | None) -> list[OrderView]:
        """Cancel every open order and waiting stop of a user (of one asset); return those cancelled."""
        index = shard_for(username, self.config.shard_count)
        return await self._timed(self.shard_names[index], "cancel_all",
                                 partial(self.shards[index].cancel_all.remote, username, asset_id))

    async def last_price(self, asset_id: str) -> int | None:
        """The asset's last trade price in ticks, from its book (None: no trade yet)."""
        return await self._ask_book(asset_id, "last_price", asset_id)

    async def get_order(self, username: str, order_id: int) -> OrderView | None:
        return await self._ask_shard(username, "get_order", username, order_id)

    async def list_orders(self, username: str, filters: dict, limit: int, offset: int) -> Page[OrderView]:
        return await self._ask_shard(username, "list_orders", username, filters, limit, offset)

    async def balances(self, username: str) -> dict[str, Balance]:
        return await self._ask_shard(username, "balances", username)

    async def transactions(self, username: str, asset_id: str, filters: dict, limit: int,
                           offset: int) -> Page[Transaction]:
        return await self._ask_shard(username, "transactions", username, asset_id, filters, limit, offset)

    # ---- market data ---------------------------------------------------

    async def summaries(self) -> dict[str, MarketSummary]:
        """Return every asset's last price and best bid and ask."""
        merged: dict[str, MarketSummary] = {}
        for part in await asyncio.gather(*(self._ask(name, book, "summaries")
                                           for name, book in zip(self.book_names, self.books))):
            merged.update(part)
        return merged

    async def depth(self, asset_id: str, levels: int) -> BookDepth | None:
        return await self._ask_book(asset_id, "depth", asset_id, levels)

    async def trades(self, asset_id: str, limit: int) -> list[TradeExecuted] | None:
        return await self._ask_book(asset_id, "trades", asset_id, limit)

    async def candles(self, asset_id: str, interval: str, limit: int) -> list[Candle] | None:
        rows = await self._ask_book(asset_id, "candles", asset_id, interval, limit)
        return None if rows is None else from_rows(Candle, rows)

    # ---- streams -------------------------------------------------------
    # Long polls are not timed: their duration is how long nothing happened, not a cost.

    async def poll_market(self, asset_id: str, since: int | None, timeout: float) -> MarketPoll | None:
        """Wait up to `timeout` s for an asset's book and trade changes past `since` (None: a snapshot)."""
        row = await self.book(asset_id).poll_market.remote(asset_id, since, timeout)
        return None if row is None else MarketPoll.from_row(row)

    async def poll_orders(self, username: str, since: int | None, incarnation: str | None,
                          timeout: float) -> OrderPoll:
        """Wait up to `timeout` s for a user's order changes and fills past `since`."""
        return OrderPoll.from_row(await self.shard(username).poll_orders.remote(username, since, incarnation,
                                                                                 timeout))

    # ---- operations ----------------------------------------------------

    def actors(self) -> list[tuple[str, Any]]:
        """Every actor of the service with its name: the registry, the shards, the books."""
        return [(REGISTRY, self.registry), *zip(self.shard_names, self.shards), *zip(self.book_names, self.books)]

    async def flush(self) -> None:
        """Wait until every change made so far, in every actor, is durable."""
        await asyncio.gather(*(self._timed(name, "flush", actor.flush.remote) for name, actor in self.actors()))

    async def drain(self) -> None:
        """Wait until every settlement made so far has reached its shard."""
        await asyncio.gather(*(self._ask(name, book, "drained") for name, book in zip(self.book_names, self.books)))

    async def actor_metrics(self, timeout: float) -> list[dict]:
        """Every actor's own figures (`metrics()`, one call each); one that has not answered
        within `timeout` seconds, or failed, is left out rather than holding the others."""

        async def ask(name: str, actor: Any) -> dict | None:
            try:
                return await self._timed(name, "metrics", lambda: asyncio.wait_for(actor.metrics.remote(), timeout))
            except Exception:  # restarting or stuck: this scrape goes without it
                return None

        answers = await asyncio.gather(*(ask(name, actor) for name, actor in self.actors()))
        return [answer for answer in answers if answer is not None]

    async def audit(self) -> dict:
        """Check the invariants of DESIGN.md across every shard and book; return the report.

        Call it when no orders are in flight: it first waits for settlements to arrive.
        """
        await self.drain()
        shard_reports = await asyncio.gather(*(self._ask(name, shard, "audit")
                                               for name, shard in zip(self.shard_names, self.shards)))
        book_orders: dict[str, list] = {}
        for part in await asyncio.gather(*(self._ask(name, book, "open_orders")
                                           for name, book in zip(self.book_names, self.books))):
            book_orders.update(part)
        book_stops: dict[str, list] = {}
        for part in await asyncio.gather(*(self._ask(name, book, "waiting_stops")
                                           for name, book in zip(self.book_names, self.books))):
            book_stops.update(part)
        return combine_audits(shard_reports, book_orders, book_stops)

    # ---- timing --------------------------------------------------------

    async def _timed(self, actor: str, method: str, call: Callable[[], Awaitable]) -> Any:
        """Make an actor call (`call()` sends it) and await it; with `call_times`, record how long it took."""
        times = self.call_times
        if times is None:
            return await call()
        started = time.perf_counter()
        try:
            return await call()
        finally:
            times.record(actor, method, time.perf_counter() - started)

    async def _ask(self, actor: str, handle: Any, method: str, *args) -> Any:
        """Call a method that is safe to repeat (again while its actor restarts), timed."""
        return await self._timed(actor, method, partial(_idempotent, getattr(handle, method), *args))

    async def _outcomes(self, actor: str, method: Any, name: str, requests: list) -> list[OrderOutcome]:
        """Call a shard's `place_orders` or `cancel_orders` with requests; return their outcomes."""
        return OrderOutcome.from_rows(await self._timed(actor, name, partial(method.remote, to_rows(requests))))


def combine_audits(shard_reports: list[dict], book_orders: dict[str, list[RestingOrder]],
                   book_stops: dict[str, list[RestingOrder]] | None = None) -> dict:
    """Join the shards' audits with the books' open orders and waiting stops into one verdict."""
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
                                        for order in report["open_orders"] if not order.waiting}
    shard_waiting: dict[int, OpenOrder] = {order.order_id: order for report in shard_reports
                                           for order in report["open_orders"] if order.waiting}
    book_open = {order.order_id: order for orders in book_orders.values() for order in orders}
    stops = {order.order_id: order for orders in (book_stops or {}).values() for order in orders}
    problems += _mismatches(shard_waiting, stops, ("waiting stop", "is not waiting in its book"),
                            ("stop", "waits"), "stop", "waiting")
    problems += _mismatches(shard_open, book_open, ("open order", "is not on its book"),
                            ("order", "rests"), "order", "open")
    report = {"problems": problems, "totals": totals, "net_deposits": net,
              "open_orders": len(shard_open), "resting_orders": len(book_open)}
    if shard_waiting or stops:
        report["waiting_stops"] = len(stops)
    return report


async def _idempotent(method, *args):
    """Call a method that is safe to repeat, again while its actor restarts."""
    return await call_with_retry(lambda: method.remote(*args), lambda: None)


def _mismatches(owned: dict, held: dict, missing: tuple[str, str], differs: tuple[str, str], kind: str,
                state: str) -> list[str]:
    """What the shards' orders (`owned`) and the books' (`held`) disagree on, in words."""
    problems = []
    for order_id, order in owned.items():
        book_side = held.get(order_id)
        if book_side is None:
            problems.append(f"{missing[0]} {order_id} {missing[1]}")
        elif book_side.remaining != order.remaining_quantity or book_side.price != order.price:
            problems.append(f"{differs[0]} {order_id} {differs[1]} with {book_side.remaining} at {book_side.price}, "
                            f"its owner sees {order.remaining_quantity} at {order.price}")
    for order_id in held.keys() - owned.keys():
        problems.append(f"book holds {kind} {order_id} that no shard has {state}")
    return problems
