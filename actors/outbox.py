"""A book actor's settlement outbox: every book event that touches an account, on its way
to that account's shard.

Book events are split into numbered settlement batches per (asset, shard) as they are
journaled (`route`); a batch leaves the outbox only once its shard acknowledges it as
durable (`acknowledge`), so a shard that was down catches up from here.

A shard's settlements travel to it by two paths that share the numbering: in the answer
to its own `submit` or `cancel` (`hand_out`, so an order's outcome costs no extra call)
and by the delivery loop (`start`), which carries the rest (fills of resting orders whose
owners did not call). While a call from a shard is under way (`call_from`) its answer will
carry every settlement durable by then, so the delivery loop stands aside and calls the
shard only when it is quiet. Each settlement is handed out once, and again only if a
delivery fails or stays unacknowledged for a while; the shard applies them strictly in
order and ignores repeats.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from itertools import takewhile

from actors.messages import SettlementBatch
from actors.retry import RETRYABLE, Backoff
from engine.events import event_owners

log = logging.getLogger(__name__)

DELIVERY_BATCH = 1000  # settlements per call to a shard
RESEND_AFTER_SECONDS = 5.0  # a settlement unacknowledged for two such periods is handed out again


class Settlement:
    """One numbered batch of book events for one shard, while it waits in the outbox."""

    __slots__ = ("asset_id", "sequence", "events", "record", "sent")

    def __init__(self, asset_id: str, sequence: int, events: list, record: int) -> None:
        self.asset_id = asset_id
        self.sequence = sequence
        self.events = events  # encoded book events
        self.record = record  # number of the journal record that made it
        self.sent = False  # handed to the shard, not yet acknowledged

    def message(self) -> SettlementBatch:
        return SettlementBatch(self.asset_id, self.sequence, self.events)


class SettlementOutbox:
    """Numbered settlements per shard, kept until acknowledged, delivered in order.

    `deliver(shard, batch)` sends settlements to a shard and returns what it acknowledges
    (asset -> last sequence it made durable); `forget(shard)` drops a stale actor handle."""

    def __init__(self, shard_count: int, shard_of: Callable[[str], int],
                 deliver: Callable[[int, list[SettlementBatch]], Awaitable[dict[str, int]]],
                 forget: Callable[[int], None]) -> None:
        self.sequences: dict[tuple[str, int], int] = {}  # (asset, shard) -> last settlement numbered
        self.pending: dict[int, deque[Settlement]] = {shard: deque() for shard in range(shard_count)}
        self.durable_records = 0  # journal records known durable
        self._shard_of = shard_of
        self._shard_cache: dict[str, int] = {}  # owner -> shard: grows with accounts, not with orders
        self._deliver_call = deliver
        self._forget = forget
        self._wake: dict[int, asyncio.Event] = {}
        self._tasks: list[asyncio.Task] = []
        self._drained = asyncio.Event()
        self._asking_acknowledgements = 0
        self._carrying: dict[int, int] = {shard: 0 for shard in range(shard_count)}  # calls under way

    # ---- filling ---------------------------------------------------------

    def route(self, asset_id: str, events: list, encoded: list, record: int) -> None:
        """Queue one asset's book events (with their encodings) that journal record `record` holds."""
        shard_cache = self._shard_cache
        per_shard: dict[int, list] = {}
        for event, encoded_event in zip(events, encoded):
            for owner in event_owners(event):
                shard = shard_cache.get(owner)
                if shard is None:
                    shard = shard_cache[owner] = self._shard_of(owner)
                batch = per_shard.setdefault(shard, [])
                if not batch or batch[-1] is not encoded_event:
                    batch.append(encoded_event)
        for shard, batch in per_shard.items():
            key = (asset_id, shard)
            sequence = self.sequences.get(key, 0) + 1
            self.sequences[key] = sequence
            self.pending[shard].append(Settlement(asset_id, sequence, batch, record))

    def made_durable(self, record: int) -> None:
        """Journal records up to `record` are durable: their settlements may leave."""
        if record > self.durable_records:
            self.durable_records = record
            for wake in self._wake.values():
                wake.set()

    def acknowledge(self, shard: int, applied: dict[str, int]) -> None:
        """Drop settlements the shard has made durable."""
        outbox = self.pending[shard]
        while outbox and outbox[0].sequence <= applied.get(outbox[0].asset_id, 0):
            outbox.popleft()
        if not outbox:
            self._drained.set()

    # ---- handing out -----------------------------------------------------

    def hand_out(self, shard: int) -> list[SettlementBatch]:
        """Mark the shard's durable settlements not yet handed out as sent, and return them."""
        durable = self.durable_records
        handed = []
        for settlement in self.pending[shard]:
            if settlement.record > durable or len(handed) == DELIVERY_BATCH:
                break
            if not settlement.sent:
                settlement.sent = True
                handed.append(settlement.message())
        return handed

    def unapplied(self, shard: int, applied: dict[str, int]) -> list[SettlementBatch]:
        """Every settlement of the shard past what it has applied (a recovering shard's catch-up)."""
        return [settlement.message() for settlement in self.pending[shard]
                if settlement.sequence > applied.get(settlement.asset_id, 0)]

    @contextmanager
    def call_from(self, shard: int, acknowledged: dict[str, int]) -> Iterator[None]:
        """A shard's call: take its acknowledgements, and keep delivery aside while it is under way."""
        self.start()
        self.acknowledge(shard, acknowledged)
        self._carrying[shard] += 1
        try:
            yield
        finally:
            self._carrying[shard] -= 1
            if not self._carrying[shard] and self.pending[shard]:
                self._wake[shard].set()  # whatever the answer could not carry goes by delivery

    async def drained(self) -> None:
        """Return once every settlement made so far has been acknowledged by its shard."""
        self.start()
        self._asking_acknowledgements += 1
        try:
            while any(self.pending.values()):
                self._drained.clear()
                for wake in self._wake.values():
                    wake.set()
                await self._drained.wait()
        finally:
            self._asking_acknowledgements -= 1

    # ---- snapshots -------------------------------------------------------

    def to_state(self) -> dict:
        return {
            "settlement_sequences": [[asset, shard, sequence]
                                     for (asset, shard), sequence in self.sequences.items()],
            "outbox": [[shard, [list(s.message()) for s in entries]] for shard, entries in self.pending.items()],
        }

    def load_state(self, state: dict) -> None:
        self.sequences = {(asset, shard): sequence for asset, shard, sequence in state["settlement_sequences"]}
        for shard, entries in state["outbox"]:
            self.pending[shard] = deque(Settlement(asset, sequence, events, 0)
                                        for asset, sequence, events in entries)

    # ---- delivery --------------------------------------------------------

    def start(self) -> None:
        """Start the delivery loops (once, inside the actor's event loop)."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        for shard in self.pending:
            self._wake[shard] = asyncio.Event()
            self._wake[shard].set()
            self._tasks.append(loop.create_task(self._deliver(shard)))
        self._tasks.append(loop.create_task(self._resend_unacknowledged()))

    async def _resend_unacknowledged(self) -> None:
        """Hand out again what a shard was given but has not acknowledged for a while.

        An answer that reached a shard whose handling then failed would otherwise wait
        for that shard's next restart; repeats are harmless (the shard ignores them).
        """
        previous: dict[int, tuple] = {}
        while True:
            await asyncio.sleep(RESEND_AFTER_SECONDS)
            for shard, outbox in self.pending.items():
                head = (outbox[0].asset_id, outbox[0].sequence) if outbox and outbox[0].sent else None
                if head is not None and previous.get(shard) == head:
                    for settlement in outbox:
                        settlement.sent = False
                    self._wake[shard].set()
                    head = None
                previous[shard] = head

    async def _deliver(self, shard: int) -> None:
        """Send durable settlements nobody has handed to the shard yet, in order, one call in flight."""
        wake = self._wake[shard]
        outbox = self.pending[shard]
        backoff = Backoff()
        while True:
            await wake.wait()
            wake.clear()
            while True:
                if self._carrying[shard] and not self._asking_acknowledgements:
                    break  # the answer to the shard's own call will carry them
                durable = self.durable_records
                batch = [s for s in takewhile(lambda s: s.record <= durable, outbox) if not s.sent]
                batch = batch[:DELIVERY_BATCH]
                if not batch and not (self._asking_acknowledgements and outbox):
                    break
                for settlement in batch:
                    settlement.sent = True
                try:
                    applied = await self._deliver_call(shard, [s.message() for s in batch])
                except Exception as error:  # a restart (RETRYABLE) or a bug there: never give up on a shard
                    if isinstance(error, RETRYABLE):
                        log.warning("settlement delivery to shard %d failed (%s); retrying", shard, error)
                    else:
                        log.exception("settlement delivery to shard %d raised; retrying", shard)
                    for settlement in batch:
                        settlement.sent = False
                    self._forget(shard)
                    await backoff.wait()
                    continue
                backoff.reset()
                before = len(outbox)
                self.acknowledge(shard, applied)
                if len(outbox) == before:
                    # Nothing acknowledged yet: the shard is making it durable, or is still
                    # recovering (it reconciles on its own). Ask again shortly.
                    await asyncio.sleep(0.01)
