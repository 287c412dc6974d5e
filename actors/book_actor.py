"""The book actor: the only writer of the order books of its assets.

It matches the orders that account shards send it, journals the book events
of each call as one record, and only then hands the results back. Every book
event that touches an account is routed to that account's shard in numbered
settlement batches per (asset, shard); batches wait in an outbox until the
shard acknowledges them, so a shard that was down catches up from here.

A shard's settlements travel back to it by two paths that share the numbering:
in the answer to its own `submit` or `cancel` (so an order's outcome costs no
extra call) and by the delivery loop, which carries the rest (fills of resting
orders whose owners did not call). While a call from a shard is under way here
its answer will carry every settlement durable by then, so the delivery loop
stands aside and calls the shard only when it is quiet. Each settlement is
handed out once, and again only if a delivery fails; the shard applies them
strictly in order, buffering one that arrives early. A shard acknowledges only
what it has made durable, with every `submit`, `cancel` and delivery answer;
only then does a settlement leave the outbox. The acknowledgements that came
with a call are journaled in its record, so a replay drops what the shards
already hold instead of rebuilding the whole settlement history in memory.

Each shard's orders carry increasing ids; the highest one seen per shard is
the fence: an id at or below it is never matched again, which makes resends
idempotent and lets a recovering shard abort orders that never arrived.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from contextlib import contextmanager
from itertools import takewhile

import ray

from actors.config import ServiceConfig, shard_for
from actors.faults import crash_point
from actors.journaled import JournaledState
from actors.senders import RETRYABLE
from engine import AssetSpec, EngineError, OrderBook, RejectReason, decode_event, encode_event

log = logging.getLogger(__name__)

_DELIVERY_BATCH = 1000  # settlements per call to a shard
_RESEND_AFTER_SECONDS = 5.0  # a settlement unacknowledged for two such periods is handed out again
_OWNER_FIELDS = {"TradeExecuted": (6, 8), "OrderRested": (2,), "OrderClosed": (2,)}


class Settlement:
    """One numbered batch of book events for one shard."""

    __slots__ = ("asset_id", "sequence", "events", "record", "sent")

    def __init__(self, asset_id: str, sequence: int, events: list, record: int) -> None:
        self.asset_id = asset_id
        self.sequence = sequence
        self.events = events
        self.record = record  # number of the journal record that made it
        self.sent = False  # handed to the shard, not yet acknowledged

    def wire(self) -> tuple:
        return self.asset_id, self.sequence, self.events


class AssetBookActor:
    """Order books for the assets routed to this actor."""

    def __init__(self, config: ServiceConfig, index: int, replay_until: int | None = None) -> None:
        self.config = config
        self.index = index
        self.books: dict[str, OrderBook] = {}
        self.settlement_sequences: dict[tuple[str, int], int] = {}
        self.outbox: dict[int, deque[Settlement]] = {shard: deque() for shard in range(config.shard_count)}
        self.fences: dict[int, int] = {}
        self.records = 0  # journal records made so far
        self.durable_records = 0
        self._shards: dict[int, ray.actor.ActorHandle] = {}
        self._wake: dict[int, asyncio.Event] = {}
        self._delivery_tasks: list[asyncio.Task] = []
        self._drained = asyncio.Event()
        self._asking_acknowledgements = 0
        self._carrying: dict[int, int] = {shard: 0 for shard in range(config.shard_count)}  # calls under way
        self.store = JournaledState(config.journal_path(f"book-{index}"), sync=config.sync,
                                    snapshot_every=config.snapshot_every, map_size=config.journal_map_size)
        started = time.perf_counter()
        count = self.store.replay(self._load_state, self._replay_record, until=replay_until)
        self.durable_records = self.records
        log.info("book actor %d recovered %d records in %.3fs", index, count, time.perf_counter() - started)

    # ---- commands ------------------------------------------------------

    async def list_asset(self, record: list) -> bool:
        """Open a book for an asset; idempotent. Return whether it is new."""
        self._start_delivery()
        spec = AssetSpec.from_record(record)
        if spec.asset_id in self.books:
            return False
        self.books[spec.asset_id] = OrderBook(spec)
        await self._journal(["asset", record])
        return True

    async def submit(self, shard: int, orders: list[tuple], acknowledged: dict[str, int]) -> tuple[list, list]:
        """Match orders from one shard, in order, once journaled; return the ids refused by
        the fence and the shard's settlements not handed out yet (its orders' outcomes among them)."""
        with self._call_from(shard, acknowledged):
            return await self._submit(shard, orders, acknowledged)

    async def _submit(self, shard: int, orders: list[tuple], acknowledged: dict[str, int]) -> tuple[list, list]:
        fence = self.fences.get(shard, 0)
        fenced: list[int] = []
        by_asset: dict[str, list] = {}
        for order_id, owner, asset_id, side, quantity, price, time_in_force, post_only, budget, timestamp in orders:
            if order_id <= fence:
                fenced.append(order_id)
                continue
            fence = order_id
            result = self.books[asset_id].submit(
                order_id, owner, side, quantity, price=price, time_in_force=time_in_force,
                post_only=post_only, budget=budget, timestamp=timestamp,
            )
            if isinstance(result, RejectReason):
                raise EngineError(f"book refused order {order_id} that its shard accepted: {result.value}")
            encoded = by_asset.setdefault(asset_id, [])
            encoded.extend(encode_event(event) for event in result.events)
        self.fences[shard] = fence
        # The shard's acknowledgements ride along, so that a replay drops what it has made durable.
        record = ["orders", shard, fence, list(by_asset.items()), acknowledged]
        self._route(record[3])
        await self._journal(record)
        crash_point(self.config, "book.after_match")
        return fenced, self._hand_out(shard)

    async def cancel(self, shard: int, cancels: list[tuple[int, str, int]],
                     acknowledged: dict[str, int]) -> tuple[list[bool], list]:
        """Take one shard's orders (order_id, asset_id, timestamp) off their books; return
        False where not open, and the shard's settlements not handed out yet (the releases among them)."""
        with self._call_from(shard, acknowledged):
            outcomes = await self._cancel(shard, cancels, acknowledged)
            return outcomes, self._hand_out(shard)

    async def _cancel(self, shard: int, cancels: list[tuple[int, str, int]],
                      acknowledged: dict[str, int]) -> list[bool]:
        by_asset: dict[str, list] = {}
        outcomes = []
        for order_id, asset_id, timestamp in cancels:
            event = self.books[asset_id].cancel(order_id, timestamp)
            if isinstance(event, RejectReason):
                outcomes.append(False)
                continue
            outcomes.append(True)
            by_asset.setdefault(asset_id, []).append(encode_event(event))
        if by_asset:
            record = ["cancels", list(by_asset.items()), shard, acknowledged]
            self._route(record[1])
            await self._journal(record)
        return outcomes

    async def reconcile(self, shard: int, fence: int, applied: dict[str, int]) -> list[tuple]:
        """Fence a recovering shard's orders and return the settlements it has not applied."""
        self._start_delivery()
        self.fences[shard] = max(self.fences.get(shard, 0), fence)
        self._acknowledge(shard, applied)
        # The fence record follows every earlier record in the journal, so once it is
        # durable so is every settlement returned below.
        pending = [s.wire() for s in self.outbox[shard] if s.sequence > applied.get(s.asset_id, 0)]
        await self._journal(["fence", shard, self.fences[shard], applied])
        return pending

    # ---- queries -------------------------------------------------------

    async def ready(self) -> bool:
        self._start_delivery()
        return True

    async def summaries(self) -> dict[str, tuple]:
        """Return {asset_id: (last_price, best_bid, best_ask)} in ticks."""
        return {asset_id: (book.last_price, book.best_bid(), book.best_ask())
                for asset_id, book in self.books.items()}

    async def depth(self, asset_id: str, levels: int) -> tuple | None:
        book = self.books.get(asset_id)
        if book is None:
            return None
        bids, asks = book.depth(levels)
        return book.sequence, bids, asks

    async def trades(self, asset_id: str, limit: int) -> list | None:
        book = self.books.get(asset_id)
        if book is None:
            return None
        return [tuple(trade) for trade in list(book.tape)[-limit:][::-1]]

    async def open_orders(self) -> dict[str, list]:
        """Return every resting order per asset: (order_id, owner, side, price, remaining), in priority."""
        return {asset_id: [(o.order_id, o.owner, o.side, o.price, o.remaining)
                           for side in ("buy", "sell") for o in book.orders_in_priority(side)]
                for asset_id, book in self.books.items()}

    async def drained(self) -> bool:
        """Answer once every settlement made so far has been acknowledged by its shard."""
        self._start_delivery()
        self._asking_acknowledgements += 1
        try:
            while any(self.outbox.values()):
                self._drained.clear()
                for wake in self._wake.values():
                    wake.set()
                await self._drained.wait()
        finally:
            self._asking_acknowledgements -= 1
        return True

    async def flush(self) -> int:
        """Wait until every change made so far is durable."""
        return await self.store.flush()

    async def pid(self) -> int:
        return os.getpid()

    # ---- internals -----------------------------------------------------

    async def _journal(self, record: list) -> None:
        self.records += 1
        number = self.records
        await self.store.append([record], snapshot=self._snapshot_state)
        if number > self.durable_records:
            self.durable_records = number
            for event in self._wake.values():
                event.set()

    def _route(self, by_asset: list) -> None:
        """Split book events into numbered settlements per (asset, shard) and queue them."""
        record = self.records + 1
        shard_count = self.config.shard_count
        for asset_id, events in by_asset:
            per_shard: dict[int, list] = {}
            for event in events:
                for field_index in _OWNER_FIELDS[event[0]]:
                    shard = shard_for(event[field_index], shard_count)
                    batch = per_shard.setdefault(shard, [])
                    if not batch or batch[-1] is not event:
                        batch.append(event)
            for shard, batch in per_shard.items():
                key = (asset_id, shard)
                sequence = self.settlement_sequences.get(key, 0) + 1
                self.settlement_sequences[key] = sequence
                self.outbox[shard].append(Settlement(asset_id, sequence, batch, record))

    def _replay_record(self, record: list) -> None:
        kind = record[0]
        # Acknowledgements were added to the records later: older journals lack them.
        if kind == "orders":
            shard, fence, by_asset = record[1:4]
            self.fences[shard] = fence
            if len(record) > 4:
                self._acknowledge(shard, record[4])
            self._apply_book_events(by_asset)
            self._route(by_asset)
        elif kind == "cancels":
            if len(record) > 2:
                self._acknowledge(record[2], record[3])
            self._apply_book_events(record[1])
            self._route(record[1])
        elif kind == "fence":
            self.fences[record[1]] = max(self.fences.get(record[1], 0), record[2])
            if len(record) > 3:
                self._acknowledge(record[1], record[3])
        elif kind == "asset":
            spec = AssetSpec.from_record(record[1])
            self.books[spec.asset_id] = OrderBook(spec)
        else:
            raise EngineError(f"unknown book journal record {kind!r}")
        self.records += 1

    def _apply_book_events(self, by_asset: list) -> None:
        for asset_id, events in by_asset:
            book = self.books[asset_id]
            for event in events:
                book.apply(decode_event(event))

    def _snapshot_state(self) -> dict:
        return {
            "books": [book.to_state() for book in self.books.values()],
            "settlement_sequences": [[asset, shard, sequence]
                                     for (asset, shard), sequence in self.settlement_sequences.items()],
            "outbox": [[shard, [list(s.wire()) for s in entries]] for shard, entries in self.outbox.items()],
            "fences": [[shard, fence] for shard, fence in self.fences.items()],
        }

    def _load_state(self, state: dict) -> None:
        for book_state in state["books"]:
            book = OrderBook.from_state(book_state)
            self.books[book.spec.asset_id] = book
        self.settlement_sequences = {(asset, shard): sequence
                                     for asset, shard, sequence in state["settlement_sequences"]}
        for shard, entries in state["outbox"]:
            self.outbox[shard] = deque(Settlement(asset, sequence, events, 0)
                                       for asset, sequence, events in entries)
        self.fences = {shard: fence for shard, fence in state["fences"]}

    # ---- delivery ------------------------------------------------------

    def _start_delivery(self) -> None:
        if self._delivery_tasks:
            return
        loop = asyncio.get_running_loop()
        for shard in range(self.config.shard_count):
            self._wake[shard] = asyncio.Event()
            self._wake[shard].set()
            self._delivery_tasks.append(loop.create_task(self._deliver(shard)))
        self._delivery_tasks.append(loop.create_task(self._resend_unacknowledged()))

    async def _resend_unacknowledged(self) -> None:
        """Hand out again what a shard was given but has not acknowledged for a while.

        An answer that reached a shard whose handling then failed would otherwise wait
        for that shard's next restart; repeats are harmless (the shard ignores them).
        """
        previous: dict[int, tuple] = {}
        while True:
            await asyncio.sleep(_RESEND_AFTER_SECONDS)
            for shard, outbox in self.outbox.items():
                head = (outbox[0].asset_id, outbox[0].sequence) if outbox and outbox[0].sent else None
                if head is not None and previous.get(shard) == head:
                    for settlement in outbox:
                        settlement.sent = False
                    self._wake[shard].set()
                    head = None
                previous[shard] = head

    def _hand_out(self, shard: int) -> list[tuple]:
        """Mark the shard's durable settlements not yet handed out as sent, and return them."""
        durable = self.durable_records
        handed = []
        for settlement in self.outbox[shard]:
            if settlement.record > durable or len(handed) == _DELIVERY_BATCH:
                break
            if not settlement.sent:
                settlement.sent = True
                handed.append(settlement.wire())
        return handed

    @contextmanager
    def _call_from(self, shard: int, acknowledged: dict[str, int]):
        """A shard's call: take its acknowledgements, and keep delivery aside while it is under way."""
        self._start_delivery()
        self._acknowledge(shard, acknowledged)
        self._carrying[shard] += 1
        try:
            yield
        finally:
            self._carrying[shard] -= 1
            if not self._carrying[shard] and self.outbox[shard]:
                self._wake[shard].set()  # whatever the answer could not carry goes by delivery

    def _acknowledge(self, shard: int, applied: dict[str, int]) -> None:
        """Drop settlements the shard has made durable."""
        outbox = self.outbox[shard]
        while outbox and outbox[0].sequence <= applied.get(outbox[0].asset_id, 0):
            outbox.popleft()
        if not outbox:
            self._drained.set()

    async def _deliver(self, shard: int) -> None:
        """Send durable settlements nobody has handed to the shard yet, in order, one call in flight."""
        wake = self._wake[shard]
        outbox = self.outbox[shard]
        backoff = 0.05
        while True:
            await wake.wait()
            wake.clear()
            while True:
                if self._carrying[shard] and not self._asking_acknowledgements:
                    break  # the answer to the shard's own call will carry them
                durable = self.durable_records
                batch = [s for s in takewhile(lambda s: s.record <= durable, outbox) if not s.sent]
                batch = batch[:_DELIVERY_BATCH]
                if not batch and not (self._asking_acknowledgements and outbox):
                    break
                for settlement in batch:
                    settlement.sent = True
                try:
                    applied = await self._shard(shard).apply_settlements.remote(
                        self.index, [s.wire() for s in batch])
                except Exception as error:  # a restart (RETRYABLE) or a bug there: never give up on a shard
                    if isinstance(error, RETRYABLE):
                        log.warning("settlement delivery to shard %d failed (%s); retrying", shard, error)
                    else:
                        log.exception("settlement delivery to shard %d raised; retrying", shard)
                    for settlement in batch:
                        settlement.sent = False
                    self._shards.pop(shard, None)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                backoff = 0.05
                before = len(outbox)
                self._acknowledge(shard, applied)
                if len(outbox) == before:
                    # Nothing acknowledged yet: the shard is making it durable, or is still
                    # recovering (it reconciles on its own). Ask again shortly.
                    await asyncio.sleep(0.01)

    def _shard(self, shard: int) -> ray.actor.ActorHandle:
        handle = self._shards.get(shard)
        if handle is None:
            handle = self._shards[shard] = ray.get_actor(
                self.config.actor_name(f"shard-{shard}"), namespace=self.config.namespace)
        return handle
