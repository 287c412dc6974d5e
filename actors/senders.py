"""Calls between actors that survive a restart of the callee.

A call to an actor that died fails with a Ray error; the callee comes back
(Ray restarts it from its journal) and the call is made again. Every call
sent this way is idempotent on the receiving side (fences, settlement
numbers), so a call that did land before the failure is harmless to repeat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import ray

log = logging.getLogger(__name__)

RETRYABLE = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError, ValueError)
_MAX_BATCH = 2000


async def call_with_retry(call: Callable[[], Awaitable[Any]], forget_handle: Callable[[], Any],
                          first_backoff: float = 0.05, max_backoff: float = 2.0) -> Any:
    """Await `call()` until it succeeds; `forget_handle` drops a stale actor handle between tries.

    ValueError is what `ray.get_actor` raises while a restarted actor is not registered yet.
    """
    backoff = first_backoff
    while True:
        try:
            return await call()
        except RETRYABLE as error:
            log.warning("call failed (%s); retrying in %.2fs", type(error).__name__, backoff)
            forget_handle()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)


class OrderedSender:
    """Sends items to one actor in the order given, one call in flight, coalescing the rest."""

    def __init__(self, call: Callable[[list], Awaitable[Any]], forget_handle: Callable[[], Any],
                 on_result: Callable[[Any], None] | None = None) -> None:
        self._call = call
        self._forget_handle = forget_handle
        self._on_result = on_result
        self._pending: list = []
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def send(self, items: list) -> None:
        self._pending.extend(items)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[:_MAX_BATCH]
                del self._pending[:_MAX_BATCH]
                try:
                    result = await call_with_retry(lambda batch=batch: self._call(batch), self._forget_handle)
                    if self._on_result is not None:
                        self._on_result(result)
                except Exception:
                    # Not a restart but a refusal: a bug. The orders stay pending, and the
                    # owner's next recovery fails them; the sender keeps serving later ones.
                    log.critical("a batch of %d items was refused", len(batch), exc_info=True)
