"""The gateway process's stream subscriptions: one long poll per watched asset or user, fanned out.

However many sockets of this process watch an asset, one task long-polls its book actor
(`poll_market`) and keeps a local copy of the book at the sequence it has seen; a new
book subscriber gets its snapshot from that copy, at that sequence, and every later
update, so snapshot plus updates is exactly the book at each update's `sequence`. Trades
go out once each, in `trade_id` order. One task per watched user long-polls the user's
shard (`poll_orders`). A subscription with no watcher left is cancelled and forgotten at
once: `stats()` shows what is held, and is empty when no socket watches anything.

Frames are pushed to each connection's own bounded queue (gateway/stream_connection.py),
never awaited here, so a slow socket cannot hold up a poll, the actors or other sockets.
"""

from __future__ import annotations

import asyncio
import logging

from actors.messages import LevelChange, MarketPoll, OrderView, StreamTrade, Transaction
from engine import AssetSpec
from gateway.access import REVOKED, SUSPENDED
from gateway.responses import iso_from_micros
from gateway.stream_connection import Connection, Frame
from gateway.views import order_data, transaction_data

log = logging.getLogger(__name__)

POLL_SECONDS = 10.0  # also about how long a subscription nobody watches lingers, for a quick return
RETRY_SECONDS = 0.5  # after a failed poll (an actor restarting)
PRIME_SECONDS = 10.0


class MarketSubscription:
    """One asset watched by this process: a local copy of its book, and who watches what."""

    def __init__(self, hub: StreamHub, spec: AssetSpec) -> None:
        self.hub = hub
        self.spec = spec
        self.asset_id = spec.asset_id
        self.book_watchers: set[Connection] = set()
        self.trade_watchers: set[Connection] = set()
        self.joining = 0  # subscribers waiting for the first snapshot
        self.levels: dict[str, dict[int, tuple[int, int]]] = {"buy": {}, "sell": {}}
        self.sequence: int | None = None
        self.last_trade_id: int | None = None
        self.primed = asyncio.Event()
        self._snapshot: tuple[int, Frame] | None = None
        self.task = asyncio.get_running_loop().create_task(self._run())

    def idle(self) -> bool:
        return not (self.book_watchers or self.trade_watchers or self.joining)

    def snapshot_frame(self) -> Frame:
        """The book at `sequence`, as the stream's snapshot frame (shared while the book is unchanged)."""
        if self._snapshot is None or self._snapshot[0] != self.sequence:
            bids = sorted(self.levels["buy"].items(), reverse=True)
            asks = sorted(self.levels["sell"].items())
            self._snapshot = (self.sequence, Frame({
                "channel": "book", "type": "snapshot", "asset_id": self.asset_id, "sequence": self.sequence,
                "bids": [self._level(price, state) for price, state in bids],
                "asks": [self._level(price, state) for price, state in asks]}))
        return self._snapshot[1]

    def _level(self, price: int, state: tuple[int, int]) -> dict:
        return {"price": self.spec.format_price(price), "quantity": self.spec.format_quantity(state[0]),
                "order_count": state[1]}

    async def _run(self) -> None:
        client = self.hub.runtime.client
        # A subscription nobody watches any more ends when its poll returns, not at once: a
        # cancelled Ray call would still run its wait in the actor, and a returning watcher
        # finds it warm.
        while not (self.primed.is_set() and self.idle()):
            try:
                answer = await client.poll_market(self.asset_id, self.sequence, POLL_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("polling the book of %s failed; retrying", self.asset_id, exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if answer is None:
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if answer.kind == "snapshot":
                self._apply_snapshot(answer)
            else:
                self._apply_changes(answer)
        self.hub.ended(self.hub.markets, self.asset_id, self)

    def _apply_snapshot(self, answer: MarketPoll) -> None:
        self.levels = {"buy": {price: (quantity, count) for price, quantity, count in answer.bids},
                       "sell": {price: (quantity, count) for price, quantity, count in answer.asks}}
        self.sequence = answer.sequence
        trades = [StreamTrade(*row) for row in answer.trades]
        if self.last_trade_id is None:
            self.last_trade_id = trades[-1].trade_id if trades else 0
        else:
            self._send_trades(trades)
        if self.primed.is_set():  # we fell behind the actor's buffer, or it restarted: start over
            frame = self.snapshot_frame()
            for connection in list(self.book_watchers):
                connection.push(frame)
        self.primed.set()

    def _apply_changes(self, answer: MarketPoll) -> None:
        if not answer.changes:
            return
        first = answer.changes[0].first_sequence
        if first != self.sequence + 1:
            log.warning("book stream of %s skipped from %s to %s; resynchronising", self.asset_id,
                        self.sequence, first)
            self.sequence = None  # the next poll answers a snapshot
            return
        changed: dict[tuple[str, int], tuple[int, int]] = {}
        trades: list[StreamTrade] = []
        for change in answer.changes:
            for row in change.levels:
                level = LevelChange(*row)
                state = (level.quantity, level.order_count)
                changed[(level.side, level.price)] = state
                if level.quantity:
                    self.levels[level.side][level.price] = state
                else:
                    self.levels[level.side].pop(level.price, None)
            trades.extend(StreamTrade(*row) for row in change.trades)
        self.sequence = answer.changes[-1].sequence
        if self.book_watchers:
            body = {"channel": "book", "type": "update", "asset_id": self.asset_id, "first_sequence": first,
                    "sequence": self.sequence, "bids": [], "asks": []}
            for (side, price), state in changed.items():
                body["bids" if side == "buy" else "asks"].append(self._level(price, state))
            frame = Frame(body, book_asset=self.asset_id)
            for connection in list(self.book_watchers):
                connection.push(frame)
        self._send_trades(trades)

    def _send_trades(self, trades: list[StreamTrade]) -> None:
        spec = self.spec
        for trade in trades:
            if trade.trade_id <= self.last_trade_id:
                continue
            self.last_trade_id = trade.trade_id
            if not self.trade_watchers:
                continue
            frame = Frame({"channel": "trades", "asset_id": self.asset_id,
                           "trade_id": f"{self.asset_id}-{trade.trade_id}",
                           "price": spec.format_price(trade.price), "quantity": spec.format_quantity(trade.quantity),
                           "taker_side": trade.taker_side, "timestamp": iso_from_micros(trade.timestamp)})
            for connection in list(self.trade_watchers):
                connection.push(frame)


class UserSubscription:
    """One user watched by this process: their order changes and fills, from their shard."""

    def __init__(self, hub: StreamHub, username: str) -> None:
        self.hub = hub
        self.username = username
        self.watchers: set[Connection] = set()
        self.joining = 0
        self.sequence: int | None = None
        self.incarnation: str | None = None
        self.primed = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run())

    def idle(self) -> bool:
        return not (self.watchers or self.joining)

    async def _run(self) -> None:
        client, runtime = self.hub.runtime.client, self.hub.runtime
        while not (self.primed.is_set() and self.idle()):  # lingers as a market does
            try:
                answer = await client.poll_orders(self.username, self.sequence, self.incarnation,
                                                  POLL_SECONDS if self.primed.is_set() else 0.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("polling the orders of a user failed; retrying", exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if answer.gap and self.primed.is_set():
                log.warning("order stream of a user missed changes (its shard restarted or the buffer overflowed)")
            self.incarnation, self.sequence = answer.incarnation, answer.sequence
            self.primed.set()
            for entry in answer.entries:
                if entry.kind == "order":
                    view = OrderView(*entry.row)
                    spec = await runtime.spec(view.asset_id)
                    frame = Frame({"channel": "orders", "data": order_data(view, spec)})
                else:
                    item = Transaction(*entry.row)
                    spec = await runtime.spec(item.asset_id)
                    frame = Frame({"channel": "fills", "data": transaction_data(item, spec)})
                for connection in list(self.watchers):
                    connection.push(frame)
        self.hub.ended(self.hub.users, self.username, self)


class StreamHub:
    """Every socket of this process and the subscriptions they share."""

    def __init__(self, runtime) -> None:
        self.runtime = runtime
        self.connections: set[Connection] = set()
        self.markets: dict[str, MarketSubscription] = {}
        self.users: dict[str, UserSubscription] = {}
        self._checks: set[asyncio.Task] = set()

    # ---- access changes (gateway/access.py): a revoked key or a suspended user closes its sockets

    def key_revoked(self, key_hash: str | None) -> None:
        """Close (1008) the sockets authenticated with a revoked key; None: check every one again."""
        if key_hash is None:
            task = asyncio.get_running_loop().create_task(self._check_all())
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)
            return
        for connection in [each for each in self.connections if each.key_hash == key_hash]:
            connection.close(*REVOKED)

    def user_suspended(self, username: str) -> None:
        for connection in [each for each in self.connections if each.username == username]:
            connection.close(*SUSPENDED)

    async def _check_all(self) -> None:
        for connection in [each for each in self.connections if each.key_hash is not None]:
            try:
                owner = await self.runtime.keys.owner(connection.key_hash)
            except Exception:  # the registry is away: the next reset checks again
                log.warning("could not check a socket's key", exc_info=True)
                return
            if owner is None:
                connection.close(*REVOKED)
            elif owner.suspended:
                connection.close(*SUSPENDED)

    def connect(self, websocket) -> Connection:
        connection = Connection(websocket, self._gone)
        self.connections.add(connection)
        return connection

    async def watch_market(self, connection: Connection, spec: AssetSpec, channel: str, answer: dict) -> bool:
        """Add a book or trades watcher: queue `answer` (the op's), then a book's snapshot, then
        its changes. False: the book actor did not answer in time."""
        watching = connection.books if channel == "book" else connection.trades
        if spec.asset_id in watching:
            connection.answer(answer)
            return True
        market = self.markets.get(spec.asset_id)
        if market is None:
            market = self.markets[spec.asset_id] = MarketSubscription(self, spec)
        if not market.primed.is_set():
            market.joining += 1
            try:
                await asyncio.wait_for(asyncio.shield(market.primed.wait()), PRIME_SECONDS)
            except asyncio.TimeoutError:
                market.joining -= 1
                self._forget_idle_market(spec.asset_id)
                return False
            except BaseException:  # the socket went away while it waited
                market.joining -= 1
                self._forget_idle_market(spec.asset_id)
                raise
            market.joining -= 1
        if connection.closing is not None or self.markets.get(spec.asset_id) is not market:
            self._forget_idle_market(spec.asset_id)
            return False
        # No await from here on: the snapshot and the watcher join at the same sequence. The
        # watcher joins before anything is queued: a push that finds the queue full closes the
        # connection, and leaving the hub then takes this watcher with it (joined after, it
        # would hold the subscription for ever).
        watching.add(spec.asset_id)
        (market.book_watchers if channel == "book" else market.trade_watchers).add(connection)
        connection.answer(answer)
        if channel == "book":
            connection.push(market.snapshot_frame())
        return True

    async def watch_orders(self, connection: Connection, answer: dict) -> bool:
        """Add a watcher of the connection's user's orders once the shard records them; queue `answer`."""
        if connection.orders:
            connection.answer(answer)
            return True
        username = connection.username
        user = self.users.get(username)
        if user is None:
            user = self.users[username] = UserSubscription(self, username)
        if not user.primed.is_set():
            user.joining += 1
            try:
                await asyncio.wait_for(asyncio.shield(user.primed.wait()), PRIME_SECONDS)
            except asyncio.TimeoutError:
                user.joining -= 1
                self._forget_idle_user(username)
                return False
            except BaseException:  # the socket went away while it waited
                user.joining -= 1
                self._forget_idle_user(username)
                raise
            user.joining -= 1
        if connection.closing is not None or self.users.get(username) is not user:
            self._forget_idle_user(username)
            return False
        connection.orders = True
        user.watchers.add(connection)
        connection.answer(answer)
        return True

    def unwatch(self, connection: Connection, channel: str, asset_id: str | None) -> None:
        if channel == "orders":
            if connection.orders:
                connection.orders = False
                user = self.users.get(connection.username)
                if user is not None:
                    user.watchers.discard(connection)
                    self._forget_idle_user(connection.username)
            return
        watching = connection.books if channel == "book" else connection.trades
        if asset_id not in watching:
            return
        watching.discard(asset_id)
        market = self.markets.get(asset_id)
        if market is not None:
            (market.book_watchers if channel == "book" else market.trade_watchers).discard(connection)
            self._forget_idle_market(asset_id)

    def _gone(self, connection: Connection) -> None:
        for asset_id in list(connection.books):
            self.unwatch(connection, "book", asset_id)
        for asset_id in list(connection.trades):
            self.unwatch(connection, "trades", asset_id)
        self.unwatch(connection, "orders", None)
        self.connections.discard(connection)

    def _forget_idle_market(self, asset_id: str) -> None:
        market = self.markets.get(asset_id)
        if market is not None and market.idle() and not market.primed.is_set():
            market.task.cancel()  # nothing to keep warm, and its first poll answers at once
            del self.markets[asset_id]

    def _forget_idle_user(self, username: str) -> None:
        user = self.users.get(username)
        if user is not None and user.idle() and not user.primed.is_set():
            user.task.cancel()
            del self.users[username]

    @staticmethod
    def ended(registry: dict, key: str, subscription) -> None:
        """A subscription's poll loop ended (nobody watched it): forget it."""
        if registry.get(key) is subscription:
            del registry[key]

    def stats(self) -> dict:
        return {"connections": len(self.connections), "market_subscriptions": len(self.markets),
                "user_subscriptions": len(self.users),
                "queued_frames": sum(len(connection.queue) for connection in self.connections)}

    async def close(self) -> None:
        for subscription in [*self.markets.values(), *self.users.values()]:
            subscription.task.cancel()
        self.markets.clear()
        self.users.clear()
