"""One WebSocket's outgoing side: a bounded queue of frames and the task that sends them.

Every frame the gateway fans out is built and encoded once (`Frame`) and queued by
reference on each watching connection. A connection's sender task writes its queue in
order; nothing else ever waits on a socket, so a reader that stops reading only grows its
own queue. Past `MAX_UNSENT` unsent frames it is a slow consumer: its queue is dropped,
its subscriptions leave the hub at once, and it is closed with 1013. Book updates of the
same asset that are still queued merge into one (the newer level states win), so a reader
that is merely slow receives fewer, larger updates instead of falling behind.

Served by gateway/ws_protocol.py, a connection writes its frames itself: each frame's
bytes are made once (`Frame.wire`), and one `Flusher` per event loop writes every
connection's queued frames in one transport write, at most every `FLUSH_SECONDS` (so a
trade fanned out to 250 sockets costs 250 writes per flush, not per frame). A socket
whose send buffer is over uvicorn's high-water mark is skipped until it drains, and
meanwhile its queue grows towards `MAX_UNSENT`. Elsewhere (tests' stand-in sockets) a
sender task sends each frame through ASGI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

import orjson

from gateway.ws_protocol import FRAME_WRITER, FrameWriter, text_frame

log = logging.getLogger(__name__)

MAX_UNSENT = 1000
SLOW_CONSUMER = (1013, "slow consumer")
CLOSE_WAIT_SECONDS = 30.0  # a close frame to a socket that never drains waits no longer than this
# Queued frames are written at most this often per event loop: a frame waits up to this long
# for others to the same socket, and a busy stream costs one write per socket per flush.
FLUSH_SECONDS = 0.01


class Frame:
    """A server frame: its JSON body, encoded once however many connections send it.

    `book_asset` is set on book updates, which may merge with the next one of the same asset."""

    __slots__ = ("body", "_encoded", "_wire", "book_asset")

    def __init__(self, body: dict, book_asset: str | None = None) -> None:
        self.body = body
        self._encoded: bytes | None = None
        self._wire: bytes | None = None
        self.book_asset = book_asset

    def encoded(self) -> bytes:
        if self._encoded is None:
            self._encoded = orjson.dumps(self.body)
        return self._encoded

    def text(self) -> str:
        return self.encoded().decode()

    def wire(self) -> bytes:
        """The whole WebSocket frame, the same bytes for every socket."""
        if self._wire is None:
            self._wire = text_frame(self.encoded())
        return self._wire

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
        self._writer: FrameWriter | None = getattr(websocket, "scope", {}).get("extensions", {}).get(FRAME_WRITER)
        self._flusher = Flusher.of_running_loop() if self._writer is not None else None
        self._resume: asyncio.Task | None = None  # waits for a full send buffer to drain
        self._sender: asyncio.Task | None = (
            None if self._writer is not None else asyncio.get_running_loop().create_task(self._send_all()))

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
        if self._flusher is not None:
            self._flusher.add(self)
        else:
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
        self._stop_sending()
        self._sender = asyncio.get_running_loop().create_task(self._close_socket(code, reason))

    async def finished(self) -> None:
        """The socket is gone (the client left): stop sending, leave the hub."""
        if self.closing is None:
            self.closing = (1000, "")
            self.queue.clear()
            self._on_gone(self)
        self._stop_sending()
        if self._sender is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sender

    def _stop_sending(self) -> None:
        for task in (self._sender, self._resume):
            if task is not None:
                task.cancel()
        self._resume = None

    def flush(self) -> None:
        """Write every queued frame in one write (the flusher's call), unless the socket's send
        buffer is full: then once it has drained."""
        queue, writer = self.queue, self._writer
        if self.closing is not None or not queue or self._resume is not None:
            return
        if not writer.open():  # closed under us: the receiving side sees it and ends the connection
            queue.clear()
            return
        if not writer.is_writable():
            self._resume = asyncio.get_running_loop().create_task(self._flush_when_writable())
            return
        frames = b"".join([frame.wire() for frame in queue])
        queue.clear()
        writer.write(frames)

    async def _flush_when_writable(self) -> None:
        await self._writer.writable()
        self._resume = None
        self._flusher.add(self)

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
            if self._writer is not None:  # its buffers stay full: the TCP connection goes, and they with it
                self._writer.abort()


class Flusher:
    """Writes the queued frames of every connection of one event loop, at most every `FLUSH_SECONDS`."""

    _by_loop: dict[asyncio.AbstractEventLoop, Flusher] = {}

    @classmethod
    def of_running_loop(cls) -> Flusher:
        loop = asyncio.get_running_loop()
        flusher = cls._by_loop.get(loop)
        if flusher is None:
            for stale in [each for each in cls._by_loop if each.is_closed()]:
                del cls._by_loop[stale]
            flusher = cls._by_loop[loop] = cls(loop)
        return flusher

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: set[Connection] = set()
        self._scheduled = False
        self._last = 0.0

    def add(self, connection: Connection) -> None:
        self._pending.add(connection)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_at(max(self._loop.time(), self._last + FLUSH_SECONDS), self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        self._last = self._loop.time()
        pending, self._pending = self._pending, set()
        for connection in pending:
            try:
                connection.flush()
            except Exception:  # one socket's failure is not the others'
                log.debug("writing to a websocket failed", exc_info=True)
