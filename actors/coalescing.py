"""Coalescing: items bound for one actor share one Ray call.

While fewer than `max_in_flight` calls are under way, an item goes out at once
(low latency when idle); when all are busy, items queue and leave together in
the next call (throughput under load), in the order they came. The gateway
sends each shard its users' orders this way (`submit`: each caller awaits its
own item's result), and a shard its held orders to each book (`send`, one call
in flight, so the book sees them in order; the answer goes to `on_result`).

With `eager`, an item that finds the queue idle is handed to `call` within
`send` itself, not by a task a loop turn later: a `call` that starts its Ray
call before returning (actors/retry.py `call_now_with_retry`) then has it on
its way before the sender goes on (a shard commits a hold while its order
travels to the book).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


class CoalescingQueue:
    """Coalesces items for one destination into calls of at most `max_batch` items.

    `call(items)` answers one result per item when items are `submit`ted; for items that are
    only `send`-t its answer goes to `on_result`. A call that raises fails the awaiting
    callers; with none awaiting, the items are dropped and the failure logged (a bug: the
    caller's `call` retries restarts itself)."""

    def __init__(self, call: Callable[[list], Awaitable[Any]], *, max_in_flight: int = 1,
                 max_batch: int = 500, on_result: Callable[[Any], None] | None = None,
                 eager: bool = False) -> None:
        self._call = call
        self._eager = eager
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._on_result = on_result
        self._queue: list[tuple[Any, asyncio.Future | None]] = []
        self._in_flight = 0

    async def submit(self, item: Any) -> Any:
        """Send one item with whatever else is waiting; return its result."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._start()
        return await future

    @property
    def idle(self) -> bool:
        """Whether an item sent now would leave at once: a call free, nothing queued."""
        return self._in_flight < self._max_in_flight and not self._queue

    def send(self, items: list) -> None:
        """Queue items to go in order, without waiting for them."""
        self._queue.extend((item, None) for item in items)
        self._start()

    def _start(self) -> None:
        if self._in_flight < self._max_in_flight:
            self._in_flight += 1
            first = self._take() if self._eager else None
            asyncio.get_running_loop().create_task(self._drain(first))

    def _take(self) -> tuple[list, Awaitable[Any]]:
        """The next batch, and its call started."""
        batch = self._queue[:self._max_batch]
        del self._queue[:self._max_batch]
        return batch, self._call([item for item, _ in batch])

    async def _drain(self, first: tuple[list, Awaitable[Any]] | None) -> None:
        try:
            while first is not None or self._queue:
                batch, call = first if first is not None else self._take()
                first = None
                try:
                    results = await call
                except BaseException as error:  # every waiter hears of the failure
                    waiting = [future for _, future in batch if future is not None and not future.done()]
                    for future in waiting:
                        future.set_exception(error)
                    if not waiting:
                        log.critical("a batch of %d items was refused", len(batch), exc_info=error)
                    continue
                if self._on_result is not None:
                    self._on_result(results)
                    continue
                for (_, future), result in zip(batch, results):
                    if future is not None and not future.done():
                        future.set_result(result)
        finally:
            self._in_flight -= 1
