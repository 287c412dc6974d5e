"""What the actors publish for the live streams: bounded, sequenced buffers and long polls over them.

A book actor keeps a `MarketStreams`: per asset, the trades into candles (always: they are
kept across restarts, see `engine.candles`), and, while a gateway watches the asset, a
bounded buffer of the book's changes, each entry covering a range of the book's `sequence`
(`first`..`last`) with the levels it touched at their new absolute quantities and the trades
it made. An account shard keeps an `OrderStreams`: per watched user, a bounded buffer of
their order changes and fills.

Ownership and invariants:
- The actor is the only writer; entries are recorded synchronously with the mutation they
  describe, so a buffer's entries are contiguous in sequence and a snapshot taken between
  two calls always falls on an entry boundary.
- A book entry is only handed out once the journal record that holds it is durable
  (`made_durable`, the same numbering as the settlement outbox): a subscriber never sees a
  trade that a crash could take back.
- Nothing is recorded for an asset or user that no gateway has polled for `WATCH_SECONDS`,
  so a service without subscribers pays a dict lookup per change and keeps no buffers.
- A poller that asks for a sequence the buffer no longer holds (it fell behind, or the actor
  restarted) gets a fresh snapshot instead of updates; a user's buffer says `gap` instead.

Everything a poll answers is plain lists (msgpack on the Ray wire), decoded by the gateway.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque

from engine.candles import CandleSeries
from engine.events import OrderRested, TradeExecuted

MARKET_BUFFER = 4096  # book entries kept per watched asset
USER_BUFFER = 1024  # order changes and fills kept per watched user
WATCH_SECONDS = 60.0  # a buffer nobody polled for this long stops recording and is dropped
MAX_POLL_SECONDS = 30.0
SNAPSHOT, UPDATES = "snapshot", "updates"


def _wait(event: asyncio.Event, timeout: float):
    return asyncio.wait_for(event.wait(), timeout)


class _Feed:
    """One watched stream: entries newer than `base`, and who waits for more."""

    __slots__ = ("entries", "base", "polled_at", "polling", "wake")

    def __init__(self, base: int) -> None:
        self.entries: deque = deque()
        self.base = base  # the sequence just before the oldest entry kept
        self.polled_at = time.monotonic()
        self.polling = 0
        self.wake = asyncio.Event()

    def stale(self, now: float) -> bool:
        return not self.polling and now - self.polled_at > WATCH_SECONDS

    def append(self, entry: list, last: int, capacity: int) -> None:
        if len(self.entries) == capacity:
            self.base = self.entries.popleft()[1]
        self.entries.append(entry)


def _level(book, side: str, price: int) -> list:
    # The engine has no public per-price lookup (engine/ is out of this change's scope);
    # reading the level dicts is O(1) where `depth()` would copy the whole side.
    level = (book._bids if side == "buy" else book._asks).get(price)
    return [side, price, level.quantity, level.count] if level is not None else [side, price, 0, 0]


def _trade_row(trade: TradeExecuted) -> list:
    """A trade as subscribers see it: no owners, no order ids."""
    return [trade.trade_id, trade.price, trade.quantity, trade.taker_side, trade.timestamp]


class MarketStreams:
    """A book actor's candles and watched book/trade buffers, per asset."""

    def __init__(self) -> None:
        self.candles: dict[str, CandleSeries] = {}
        self.feeds: dict[str, _Feed] = {}
        self.durable = 0  # journal records known durable

    # ---- recording (on the matching path) ------------------------------

    def record(self, asset_id: str, book, events: list, record: int, cancelled: tuple = ()) -> None:
        """Note one call's events of one asset, which journal record `record` will hold.

        `cancelled` names the (side, price) of resting orders the call took off the book
        (an `OrderClosed` does not carry them)."""
        candles = self.candles.get(asset_id)
        if candles is None:
            candles = self.candles[asset_id] = CandleSeries()
        touched: dict[tuple[str, int], None] = dict.fromkeys(cancelled)
        trades = []
        for event in events:
            kind = type(event)
            if kind is TradeExecuted:
                candles.add(event.price, event.quantity, event.timestamp)
                trades.append(event)
                touched[("sell" if event.taker_side == "buy" else "buy", event.price)] = None
            elif kind is OrderRested:
                touched[(event.side, event.price)] = None
        feed = self.feeds.get(asset_id)
        if feed is None:
            return
        if feed.stale(time.monotonic()):
            del self.feeds[asset_id]
            return
        last = book.sequence  # every book event counts one in the book's sequence
        entry = [last - len(events) + 1, last, [_level(book, side, price) for side, price in touched],
                 [_trade_row(trade) for trade in trades], record]
        feed.append(entry, last, MARKET_BUFFER)

    def replayed(self, asset_id: str, events: list) -> None:
        """Feed replayed events to the candles (nobody watches during a replay)."""
        candles = self.candles.get(asset_id)
        if candles is None:
            candles = self.candles[asset_id] = CandleSeries()
        for event in events:
            if type(event) is TradeExecuted:
                candles.add(event.price, event.quantity, event.timestamp)

    def made_durable(self, record: int) -> None:
        if record <= self.durable:
            return
        self.durable = record
        for feed in self.feeds.values():
            if feed.polling:
                feed.wake.set()

    # ---- reading -------------------------------------------------------

    async def poll(self, book, asset_id: str, since: int | None, timeout: float) -> list:
        """Answer `[UPDATES, entries]` past `since` once durable (waiting up to `timeout`
        seconds; none on timeout), or `[SNAPSHOT, ...]` when `since` cannot be served."""
        feed = self.feeds.get(asset_id)
        if feed is None:
            feed = self.feeds[asset_id] = _Feed(book.sequence)
        feed.polling += 1
        try:
            deadline = time.monotonic() + min(max(timeout, 0.0), MAX_POLL_SECONDS)
            while True:
                feed.polled_at = time.monotonic()
                if since is None or since < feed.base or since > book.sequence:
                    return self._snapshot(book)
                durable = self.durable
                ready = [entry[:4] for entry in feed.entries if entry[0] > since and entry[4] <= durable]
                remaining = deadline - feed.polled_at
                if ready or remaining <= 0:
                    return [UPDATES, ready]
                feed.wake.clear()
                try:
                    await _wait(feed.wake, remaining)
                except asyncio.TimeoutError:
                    pass
        finally:
            feed.polling -= 1

    @staticmethod
    def _snapshot(book) -> list:
        bids, asks = book.depth(len(book._bid_prices) + len(book._ask_keys) + 1)
        return [SNAPSHOT, book.sequence, [list(level) for level in bids], [list(level) for level in asks],
                [_trade_row(trade) for trade in book.tape]]

    def candle_rows(self, asset_id: str, interval: str, limit: int) -> list[list]:
        candles = self.candles.get(asset_id)
        return [] if candles is None else candles.latest(interval, limit)

    # ---- snapshots of the actor's state --------------------------------

    def to_state(self) -> dict:
        return {"candles": [[asset_id, series.to_state()] for asset_id, series in self.candles.items()]}

    def load_state(self, state: dict) -> None:
        # Snapshots written before candles existed have none: those start from the replayed tail.
        self.candles = {asset_id: CandleSeries.from_state(series) for asset_id, series in state.get("candles", [])}


class OrderStreams:
    """An account shard's watched users: their order changes and fills, sequenced per shard."""

    def __init__(self) -> None:
        self.feeds: dict[str, _Feed] = {}
        self.sequence = 0
        # A restarted shard numbers from 0 again: pollers learn it from a new incarnation.
        self.incarnation = os.urandom(8).hex()
        self._swept = time.monotonic()

    def watched_orders(self, accounts, book_events: tuple) -> dict | None:
        """The records of watched users' orders that a settlement touches, taken before it is
        applied (a closed order may leave the shard's hot state as it is applied)."""
        feeds = self.feeds
        if not feeds:
            return None
        orders = accounts.orders
        touched: dict[int, object] = {}
        for event in book_events:
            if type(event) is TradeExecuted:
                order_ids = (event.taker_order_id, event.maker_order_id)
            else:
                order_ids = (event.order_id,)
            for order_id in order_ids:
                order = orders.get(order_id)
                if order is not None and order.username in feeds:
                    touched[order_id] = order
        return touched or None

    def settled(self, accounts, asset_id: str, book_events: tuple, touched: dict | None) -> None:
        """Publish what one applied settlement changed for watched users: fills, then orders."""
        if not touched:
            return
        for event in book_events:
            if type(event) is TradeExecuted:
                for order_id in (event.taker_order_id, event.maker_order_id):
                    order = touched.get(order_id)
                    if order is not None and order.username in self.feeds:
                        self._publish(order.username, "fill", _fill_row(accounts, asset_id, order, event))
        for order in touched.values():
            if order.username in self.feeds:
                self._publish(order.username, "order", list(order.view()))

    def _publish(self, username: str, kind: str, row: list) -> None:
        feed = self.feeds[username]
        self.sequence += 1
        feed.append([self.sequence, self.sequence, kind, row], self.sequence, USER_BUFFER)
        if feed.polling:
            feed.wake.set()

    async def poll(self, username: str, since: int | None, incarnation: str | None, timeout: float) -> list:
        """Answer `[incarnation, sequence, gap, entries]`: the user's `[sequence, kind, row]`
        entries past `since`, waiting up to `timeout` seconds for one. The first poll (or one
        from another incarnation) starts watching and answers no entries."""
        now = time.monotonic()
        if now - self._swept > WATCH_SECONDS / 4:
            self._swept = now
            for stale in [name for name, feed in self.feeds.items() if feed.stale(now)]:
                del self.feeds[stale]
        feed = self.feeds.get(username)
        if feed is None:
            feed = self.feeds[username] = _Feed(self.sequence)
        if since is None or incarnation != self.incarnation:
            feed.polled_at = now
            return [self.incarnation, self.sequence, since is not None, []]
        feed.polling += 1
        try:
            deadline = now + min(max(timeout, 0.0), MAX_POLL_SECONDS)
            while True:
                feed.polled_at = time.monotonic()
                ready = [[entry[0], entry[2], entry[3]] for entry in feed.entries if entry[0] > since]
                remaining = deadline - feed.polled_at
                if ready or remaining <= 0:
                    last = ready[-1][0] if ready else max(since, feed.base)
                    return [self.incarnation, last, since < feed.base, ready]
                feed.wake.clear()
                try:
                    await _wait(feed.wake, remaining)
                except asyncio.TimeoutError:
                    pass
        finally:
            feed.polling -= 1


def _fill_row(accounts, asset_id: str, order, trade: TradeExecuted) -> list:
    """One side of a fill as `Transaction` fields (the shard's own transaction of it)."""
    buy = order.side.value == "buy"
    notional = accounts.assets[asset_id].notional(trade.price, trade.quantity)
    return [f"{asset_id}-{trade.trade_id}-{'B' if buy else 'S'}", order.username, asset_id,
            "BUY" if buy else "SELL", trade.quantity, trade.price, notional, order.order_id, trade.timestamp]
