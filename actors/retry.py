"""Calls to actors that survive a restart of the callee.

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

# ValueError is what `ray.get_actor` raises while a restarted actor is not registered yet.
RETRYABLE = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError, ValueError)


class Backoff:
    """Exponential waits between tries: `first`, doubling up to `most` seconds."""

    def __init__(self, first: float = 0.05, most: float = 2.0) -> None:
        self.first = first
        self.most = most
        self.next = first

    async def wait(self) -> None:
        await asyncio.sleep(self.next)
        self.next = min(self.next * 2, self.most)

    def reset(self) -> None:
        self.next = self.first


async def call_with_retry(call: Callable[[], Awaitable[Any]], forget_handle: Callable[[], Any]) -> Any:
    """Await `call()` until it succeeds; `forget_handle` drops a stale actor handle between tries."""
    backoff = Backoff()
    while True:
        try:
            return await call()
        except RETRYABLE as error:
            log.warning("call failed (%s); retrying in %.2fs", type(error).__name__, backoff.next)
            forget_handle()
            await backoff.wait()


def call_now_with_retry(call: Callable[[], Awaitable[Any]], forget_handle: Callable[[], Any]) -> Awaitable[Any]:
    """`call_with_retry`, with the first try made before this returns: an actor call (`.remote()`)
    is on its way before the caller next yields to its loop."""
    try:
        first: Any = call()
    except RETRYABLE as error:
        first = error
    return _first_then_retry(first, call, forget_handle)


async def _first_then_retry(first: Any, call: Callable[[], Awaitable[Any]],
                            forget_handle: Callable[[], Any]) -> Any:
    try:
        if isinstance(first, BaseException):
            raise first
        return await first
    except RETRYABLE as error:
        log.warning("call failed (%s); retrying", type(error).__name__)
        forget_handle()
        await Backoff().wait()
    return await call_with_retry(call, forget_handle)
