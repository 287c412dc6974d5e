"""The book actor: the only writer of the order books of its assets.

It matches the orders that account shards send it, journals the book events
of each call as one record (see actors/records.py), and only then hands the
results back. Every book event that touches an account goes to that account's
shard through the settlement outbox (actors/outbox.py), numbered per (asset,
shard) and kept until the shard acknowledges it as durable. The
acknowledgements that come with a call are journaled in its record, so a
replay drops what the shards already hold instead of rebuilding the whole
settlement history in memory.

Each shard's orders carry increasing ids; the highest one seen per shard is
the fence: an id at or below it is never matched again, which makes resends
idempotent and lets a recovering shard abort orders that never arrived.
Amends travel among the orders (`BookAmend`) with ids of the same sequence,
so the fence covers them too: an amend is carried out once or never, and a
recovering shard gives back the hold of one that never arrived.

An order a shard sent before its own journal held the order's hold (issue 12: the two
commits in parallel) carries the hold's events; they go into this book's record and the
shard's settlements ahead of the order's own events (`OrderHeld`), so a shard that crashed
before its commit gets its hold back with the order's fills. The book itself skips them.

Stops wait in each book (engine/stops.py); the stops a call's trades trigger
enter matching within that call, so their events are journaled in the same
record as the trade that triggered them: a replay applies them as they were,
and a stop triggers exactly once.
"""

from __future__ import annotations

import logging
import os
import time

import ray

from actors.config import ServiceConfig, shard_for
from actors.faults import crash_point
from actors.journaled import JournaledState
from actors.messages import (
    BOOK_AMEND_FIELDS, BookAmend, BookCancel, BookDepth, BookOrder, CancelAnswer, MarketSummary, RestingOrder,
    SubmitAnswer, TradeExecuted, from_rows, to_rows,
)
from actors.outbox import SettlementOutbox
from actors.streams import MarketStreams
from actors.records import BOOK_RECORDS, AssetOpened, Fenced, OrdersCancelled, OrdersMatched
from engine import AssetSpec, EngineError, OrderBook, OrderHeld, RejectReason, decode_event, encode_event

log = logging.getLogger(__name__)


class AssetBookActor:
    """Order books for the assets routed to this actor."""

    def __init__(self, config: ServiceConfig, index: int, replay_until: int | None = None) -> None:
        self.config = config
        self.index = index
        self.books: dict[str, OrderBook] = {}
        self.fences: dict[int, int] = {}
        self.records = 0  # journal records made so far
        self._shards: dict[int, ray.actor.ActorHandle] = {}
        self.streams = MarketStreams()  # candles, and book/trade changes for the gateways' streams
        shard_count = config.shard_count
        self.outbox = SettlementOutbox(
            shard_count, lambda owner: shard_for(owner, shard_count),
            lambda shard, batch: self._shard(shard).apply_settlements.remote(self.index, to_rows(batch)),
            lambda shard: self._shards.pop(shard, None))
        self.store = JournaledState(config.journal_path(f"book-{index}"), sync=config.sync,
                                    snapshot=self._snapshot_state, snapshot_every=config.snapshot_every,
                                    snapshot_seconds=config.snapshot_seconds, retention=config.journal_retention,
                                    map_size=config.journal_map_size)
        started = time.perf_counter()
        count = self.store.replay(self._load_state, self._replay_record, until=replay_until)
        self.outbox.made_durable(self.records)
        self.streams.made_durable(self.records)
        log.info("book actor %d recovered %d records in %.3fs", index, count, time.perf_counter() - started)

    # ---- commands ------------------------------------------------------

    async def list_asset(self, spec: AssetSpec) -> bool:
        """Open a book for an asset; idempotent. Return whether it is new."""
        self.outbox.start()
        if spec.asset_id in self.books:
            return False
        self.books[spec.asset_id] = OrderBook(spec)
        await self._journal(AssetOpened(spec.to_record()))
        return True

    async def submit(self, shard: int, orders: list[list], acknowledged: dict[str, int]) -> list:
        """Match `BookOrder`s (rows) from one shard, in order, once journaled; answer a `SubmitAnswer`
        row: the ids refused by the fence and the shard's settlements not handed out yet."""
        with self.outbox.call_from(shard, acknowledged):
            fenced = await self._submit(shard, orders, acknowledged)
            return SubmitAnswer(fenced, self.outbox.hand_out(shard)).to_row()

    async def _submit(self, shard: int, rows: list[list], acknowledged: dict[str, int]) -> list[int]:
        fence = self.fences.get(shard, 0)
        fenced: list[int] = []
        by_asset: dict[str, list] = {}  # asset -> the events of this call
        moved: dict[str, list] = {}  # asset -> (side, price) of levels amends took orders from
        new = tuple.__new__
        for row in rows:
            if len(row) == BOOK_AMEND_FIELDS:
                amend = new(BookAmend, row)
                if amend.amend_id <= fence:
                    fenced.append(amend.amend_id)
                    continue
                fence = amend.amend_id
                events = self._amend(amend, moved)
                by_asset.setdefault(amend.asset_id, []).extend(events)
                continue
            order = new(BookOrder, row)
            if order.order_id <= fence:
                fenced.append(order.order_id)
                continue
            fence = order.order_id
            book = self.books[order.asset_id]
            if order.stop_price is None:
                result = book.submit(
                    order.order_id, order.owner, order.side, order.quantity, price=order.price,
                    time_in_force=order.time_in_force, post_only=order.post_only, budget=order.budget,
                    timestamp=order.timestamp,
                )
            else:
                result = book.submit_stop(order.order_id, order.owner, order.side, order.stop_kind, order.stop_price,
                                          order.quantity, price=order.price, time_in_force=order.time_in_force,
                                          timestamp=order.timestamp)
            if isinstance(result, RejectReason):
                raise EngineError(f"book refused order {order.order_id} that its shard accepted: {result.value}")
            events = by_asset.get(order.asset_id)
            if events is None:
                by_asset[order.asset_id] = events = []
            if order.held is not None:
                events.append(OrderHeld(order.order_id, order.owner, order.held))
            events.extend(result.events)
            if result.cascade:
                events.extend(result.cascade)
        self.fences[shard] = fence
        for asset_id, events in by_asset.items():
            self.streams.record(asset_id, self.books[asset_id], _book_changes(events), self.records + 1,
                                tuple(moved.get(asset_id, ())))
        # The shard's acknowledgements ride along, so that a replay drops what it has made durable.
        await self._journal(OrdersMatched(shard, acknowledged, fence, self._route(by_asset)))
        crash_point(self.config, "book.after_match")
        return fenced

    async def cancel(self, shard: int, cancels: list[list], acknowledged: dict[str, int]) -> list:
        """Take one shard's orders (`BookCancel` rows) off their books; answer a `CancelAnswer` row:
        whether each was open, and the shard's settlements not handed out yet (the releases among them)."""
        with self.outbox.call_from(shard, acknowledged):
            cancelled = await self._cancel(shard, from_rows(BookCancel, cancels), acknowledged)
            return CancelAnswer(cancelled, self.outbox.hand_out(shard)).to_row()

    async def _cancel(self, shard: int, cancels: list[BookCancel], acknowledged: dict[str, int]) -> list[bool]:
        by_asset: dict[str, list] = {}
        cancelled = []
        for cancel in cancels:
            book = self.books[cancel.asset_id]
            resting = book.resting(cancel.order_id)  # None for a waiting stop: no level changes
            event = book.cancel(cancel.order_id, cancel.timestamp, cancel.reason)
            if isinstance(event, RejectReason):
                cancelled.append(False)
                continue
            cancelled.append(True)
            by_asset.setdefault(cancel.asset_id, []).append(event)
            levels = () if resting is None else ((resting.side, resting.price),)
            self.streams.record(cancel.asset_id, book, [event], self.records + 1, levels)
        if by_asset:
            await self._journal(OrdersCancelled(shard, acknowledged, self._route(by_asset)))
        return cancelled

    def _amend(self, amend: BookAmend, moved: dict[str, list]) -> list:
        """Carry out one amend on its book; note the level the order leaves (for the streams)."""
        book = self.books[amend.asset_id]
        resting = book.resting(amend.order_id)
        if resting is not None:
            moved.setdefault(amend.asset_id, []).append((resting.side, resting.price))
        return book.amend(amend.amend_id, amend.order_id, amend.owner, amend.reduced_by, amend.price,
                          post_only=amend.post_only, timestamp=amend.timestamp)

    async def reconcile(self, shard: int, fence: int, applied: dict[str, int]) -> list[list]:
        """Fence a recovering shard's orders and return the settlements it has not applied (rows)."""
        self.outbox.start()
        self.fences[shard] = max(self.fences.get(shard, 0), fence)
        self.outbox.acknowledge(shard, applied)
        # The fence record follows every earlier record in the journal, so once it is
        # durable so is every settlement returned below.
        unapplied = to_rows(self.outbox.unapplied(shard, applied))
        await self._journal(Fenced(shard, applied, self.fences[shard]))
        return unapplied

    # ---- queries -------------------------------------------------------

    async def ready(self) -> bool:
        self.outbox.start()
        return True

    async def summaries(self) -> dict[str, MarketSummary]:
        """Return each asset's last price and best bid and ask, in ticks."""
        return {asset_id: MarketSummary(book.last_price, book.best_bid(), book.best_ask())
                for asset_id, book in self.books.items()}

    async def depth(self, asset_id: str, levels: int) -> BookDepth | None:
        book = self.books.get(asset_id)
        if book is None:
            return None
        bids, asks = book.depth(levels)
        return BookDepth(book.sequence, bids, asks)

    async def trades(self, asset_id: str, limit: int) -> list[TradeExecuted] | None:
        book = self.books.get(asset_id)
        if book is None:
            return None
        return list(book.tape)[-limit:][::-1]

    async def poll_market(self, asset_id: str, since: int | None, timeout: float) -> list | None:
        """Long-poll an asset's book and trade changes past `since` (see actors/streams.py)."""
        book = self.books.get(asset_id)
        return None if book is None else await self.streams.poll(book, asset_id, since, timeout)

    async def candles(self, asset_id: str, interval: str, limit: int) -> list[list] | None:
        """Return the newest `limit` candles of an interval, oldest first, or None for an unknown asset."""
        if asset_id not in self.books:
            return None
        return self.streams.candle_rows(asset_id, interval, limit)

    async def open_orders(self) -> dict[str, list[RestingOrder]]:
        """Return every resting order per asset, in priority."""
        return {asset_id: resting_orders(book) for asset_id, book in self.books.items()}

    async def waiting_stops(self) -> dict[str, list[RestingOrder]]:
        """Return every waiting stop per asset (its limit price, None for a stop market; its quantity)."""
        return {asset_id: waiting_stops(book) for asset_id, book in self.books.items()}

    async def last_price(self, asset_id: str) -> int | None:
        """The asset's last trade price in ticks (None: no trade yet, or no such asset)."""
        book = self.books.get(asset_id)
        return None if book is None else book.last_price

    async def drained(self) -> bool:
        """Answer once every settlement made so far has been acknowledged by its shard."""
        await self.outbox.drained()
        return True

    async def flush(self) -> int:
        """Wait until every change made so far is durable."""
        return await self.store.flush()

    async def pid(self) -> int:
        return os.getpid()

    # ---- internals -----------------------------------------------------

    async def _journal(self, record) -> None:
        self.records += 1
        number = self.records
        # Snapshots count events, not records: one record holds a whole call's book events.
        events = sum(len(encoded) for _, encoded in getattr(record, "events", ())) or 1
        await self.store.append([BOOK_RECORDS.encode(record)], events=events)
        self.outbox.made_durable(number)
        self.streams.made_durable(number)

    def _route(self, by_asset: dict[str, list]) -> list:
        """Queue the settlements of the record about to be journaled; return its events, encoded."""
        record = self.records + 1
        encoded_by_asset = []
        for asset_id, events in by_asset.items():
            encoded = [encode_event(event) for event in events]
            self.outbox.route(asset_id, events, encoded, record)
            encoded_by_asset.append([asset_id, encoded])
        return encoded_by_asset

    def _replay_record(self, raw: list) -> None:
        record = BOOK_RECORDS.decode(raw)
        kind = type(record)
        if kind is OrdersMatched or kind is OrdersCancelled:
            if kind is OrdersMatched:
                self.fences[record.shard] = record.fence
            if record.shard is not None:
                self.outbox.acknowledge(record.shard, record.acknowledged)
            for asset_id, encoded in record.events:
                book = self.books[asset_id]
                events = [decode_event(event) for event in encoded]
                changes = _book_changes(events)
                for event in changes:
                    book.apply(event)
                self.streams.replayed(asset_id, changes)
                self.outbox.route(asset_id, events, encoded, self.records + 1)
        elif kind is Fenced:
            self.fences[record.shard] = max(self.fences.get(record.shard, 0), record.fence)
            self.outbox.acknowledge(record.shard, record.acknowledged)
        elif kind is AssetOpened:
            spec = AssetSpec.from_record(record.asset)
            self.books[spec.asset_id] = OrderBook(spec)
        else:
            raise EngineError(f"unknown book journal record {record!r}")
        self.records += 1

    def _snapshot_state(self) -> dict:
        return {
            "books": [book.to_state() for book in self.books.values()],
            **self.outbox.to_state(),
            "fences": [[shard, fence] for shard, fence in self.fences.items()],
            **self.streams.to_state(),
        }

    def _load_state(self, state: dict) -> None:
        for book_state in state["books"]:
            book = OrderBook.from_state(book_state)
            self.books[book.spec.asset_id] = book
        self.outbox.load_state(state)
        self.fences = {shard: fence for shard, fence in state["fences"]}
        self.streams.load_state(state)

    def _shard(self, shard: int) -> ray.actor.ActorHandle:
        handle = self._shards.get(shard)
        if handle is None:
            handle = self._shards[shard] = ray.get_actor(
                self.config.actor_name(f"shard-{shard}"), namespace=self.config.namespace)
        return handle

    async def metrics(self) -> dict:
        """Figures for /metrics, gathered once per scrape: journal, memory, resting orders, outbox."""
        figures = self.store.metrics(f"book-{self.index}")
        figures["open_orders"] = {asset_id: book.open_order_count() for asset_id, book in self.books.items()}
        figures["waiting_stops"] = {asset_id: len(book.stops) for asset_id, book in self.books.items()}
        figures["queues"] = {"settlements_unacknowledged": sum(map(len, self.outbox.pending.values()))}
        return figures


def _book_changes(events: list) -> list:
    """A record's events without the holds it carries for shards (`OrderHeld`): what changed the book."""
    if not any(type(event) is OrderHeld for event in events):
        return events
    return [event for event in events if type(event) is not OrderHeld]


def resting_orders(book: OrderBook) -> list[RestingOrder]:
    """Every order resting on a book, bids then asks, each side in priority."""
    return [order for side in ("buy", "sell") for order in book.orders_in_priority(side)]


def waiting_stops(book: OrderBook) -> list[RestingOrder]:
    """Every stop waiting in a book, in trigger order, as `RestingOrder`s of its limit price and quantity."""
    return [RestingOrder(entry[0], entry[1], entry[2], entry[5], entry[6]) for entry in book.stops.in_priority()]
