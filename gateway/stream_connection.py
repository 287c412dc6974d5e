"""One WebSocket's outgoing side: a bounded queue of frames and the task that sends them.

Every frame the gateway fans out is built and encoded once (`Frame`) and queued by
reference on each watching connection. A connection's sender task writes its queue in
order; nothing else ever waits on a socket, so a reader that stops reading only grows its
own queue. Past `MAX_UNSENT` unsent frames it is a slow consumer: its queue is dropped,
its subscriptions leave the hub at once, and it is closed with 1013. Book updates of the
same asset that are still queued merge into one (the newer level states win), so a reader
that is merely slow receives fewer, larger updates instead of falling behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

import orjson

log = logging.getLogger(__name__)

MAX_UNSENT = 1000
SLOW_CONSUMER = (1013, "slow consumer")
CLOSE_WAIT_SECONDS = 30.0  # a close frame to a socket that never drains waits no longer than this


class Frame:
    """A server frame: its JSON body, encoded once however many connections send it.

    `book_asset` is set on book updates, which may merge with the next one of the same asset."""

    __slots__ = ("body", "_text", "book_asset")

    def __init__(self, body: dict, book_asset: str | None = None) -> None:
        self.body = body
        self._text: str | None = None
        self.book_asset = book_asset

    def text(self) -> str:
        if self._text is None:
            self._text = orjson.dumps(self.body).decode()
        return self._text

    def merged_with(self, newer: Frame) -> Frame:
        """A book update covering this one and `newer`, the next of the same asset."""
        body = dict(newer.body)
        body["first_sequence"] = self.body["first_sequence"]
        for side in ("bids", "asks"):
            levels = {level["price"]: level for level in self.body[side]}
            levels.update((level["price"], level) for level in newer.body[side])
            body[side] = list(levels.values())
        return Frame(body, self.book_asset)


class Connection:
    """A socket's queue and what it watches; the hub adds and removes its subscriptions."""

    def __init__(self, websocket: Any, on_gone) -> None:
        self.websocket = websocket
        self.username: str | None = None
        self.key_hash: str | None = None  # of the key it authenticated with: its revocation closes it
        self.books: set[str] = set()
        self.trades: set[str] = set()
        self.orders = False
        self.queue: deque[Frame] = deque()
        self.closing: tuple[int, str] | None = None
        self._wake = asyncio.Event()
        self._on_gone = on_gone  # the hub's: drop this connection's subscriptions
        self._sender = asyncio.get_running_loop().create_task(self._send_all())

    def subscriptions(self) -> int:
        return len(self.books) + len(self.trades) + self.orders

    def push(self, frame: Frame) -> None:
        """Queue a frame; never waits. A queue past `MAX_UNSENT` closes the connection (1013)."""
        if self.closing is not None:
            return
        queue = self.queue
        if frame.book_asset is not None and queue and queue[-1].book_asset == frame.book_asset:
            queue[-1] = queue[-1].merged_with(frame)
            return
        if len(queue) >= MAX_UNSENT:
            log.info("closing a slow consumer (%d unsent frames)", len(queue))
            self.close(*SLOW_CONSUMER)
            return
        queue.append(frame)
        self._wake.set()

    def answer(self, body: dict) -> None:
        self.push(Frame(body))

    def close(self, code: int, reason: str) -> None:
        """Drop what is queued, leave the hub now, and close the socket once it takes a frame."""
        if self.closing is not None:
            return
        self.closing = (code, reason)
        self.queue.clear()
        self._on_gone(self)
        # The sender may be waiting on a socket that never drains: it is not waited for.
        self._sender.cancel()
        self._sender = asyncio.get_running_loop().create_task(self._close_socket(code, reason))

    async def finished(self) -> None:
        """The socket is gone (the client left): stop sending, leave the hub."""
        if self.closing is None:
            self.closing = (1000, "")
            self.queue.clear()
            self._on_gone(self)
        self._sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._sender

    async def _send_all(self) -> None:
        queue, wake, send = self.queue, self._wake, self.websocket.send_text
        try:
            while True:
                while not queue:
                    wake.clear()
                    await wake.wait()
                await send(queue.popleft().text())
        except asyncio.CancelledError:
            raise
        except Exception:  # the socket went away under us; the receiving side will see it
            log.debug("sending to a websocket failed", exc_info=True)

    async def _close_socket(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self.websocket.close(code, reason), CLOSE_WAIT_SECONDS)
        except Exception as error:
            log.info("closing a websocket (%d) failed: %r", code, error)
