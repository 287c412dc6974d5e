"""Micro-batching: concurrent requests bound for one actor share one Ray call.

While fewer than `max_in_flight` calls are under way a request goes out at
once (low latency when idle); when all are busy, requests queue and leave
together in the next call (throughput under load). Each caller gets its own
item's result, or the call's exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


class Batcher:
    """Coalesces items for one destination into calls of at most `max_batch` items."""

    def __init__(self, call: Callable[[list], Awaitable[list]], *, max_in_flight: int = 1,
                 max_batch: int = 500) -> None:
        self._call = call
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._queue: list[tuple[Any, asyncio.Future]] = []
        self._in_flight = 0

    async def submit(self, item: Any) -> Any:
        """Send one item with whatever else is waiting; return its result."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._in_flight < self._max_in_flight:
            self._in_flight += 1
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:self._max_batch]
                del self._queue[:self._max_batch]
                try:
                    results = await self._call([item for item, _ in batch])
                except BaseException as error:  # every waiter hears of the failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(batch, results):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._in_flight -= 1
