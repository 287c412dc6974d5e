"""Frames made once for every socket, and each socket's queue written in one write per flush."""

from __future__ import annotations

import asyncio

import pytest
from websockets.frames import Frame as WireFrame
from websockets.frames import Opcode
from websockets.streams import StreamReader

from gateway.stream_connection import MAX_UNSENT, SLOW_CONSUMER, Connection, Frame
from gateway.ws_protocol import FRAME_WRITER, text_frame


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_a_text_frame_parses_as_one_final_unmasked_text_frame_with_the_payload(size):
    payload = ("é" * (size // 2) + "x" * (size % 2)).encode()
    reader = StreamReader()
    reader.feed_data(text_frame(payload))
    parser = WireFrame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame = done.value
    assert frame.opcode is Opcode.TEXT and frame.fin and bytes(frame.data) == payload


class _Writer:
    """A FrameWriter stand-in: records writes; `writable` is the socket's flow control."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.writable_now = asyncio.Event()
        self.writable_now.set()
        self.is_open = True
        self.aborted = False

    def open(self) -> bool:
        return self.is_open

    def is_writable(self) -> bool:
        return self.writable_now.is_set()

    async def writable(self) -> None:
        await self.writable_now.wait()

    def write(self, frames: bytes) -> None:
        self.writes.append(frames)

    def abort(self) -> None:
        self.aborted = True


class _Socket:
    def __init__(self, writer: _Writer) -> None:
        self.scope = {"extensions": {FRAME_WRITER: writer}}
        self.closed_with: tuple[int, str] | None = None

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


async def _flushed(writer: _Writer, count: int) -> None:
    while len(writer.writes) < count:
        await asyncio.sleep(0.001)


def test_frames_queued_together_leave_in_one_write_in_order_the_same_bytes_for_every_socket():
    async def scenario():
        writers = [_Writer(), _Writer()]
        connections = [Connection(_Socket(writer), lambda _: None) for writer in writers]
        frames = [Frame({"channel": "trades", "trade_id": number}) for number in range(5)]
        for frame in frames:
            for connection in connections:
                connection.push(frame)
        for writer in writers:
            await asyncio.wait_for(_flushed(writer, 1), 5)
        for connection in connections:
            await connection.finished()
        return writers, frames

    writers, frames = asyncio.run(scenario())
    expected = b"".join(frame.wire() for frame in frames)
    assert [writer.writes for writer in writers] == [[expected], [expected]]


def test_a_socket_with_a_full_send_buffer_is_written_once_it_drains_or_closed_as_a_slow_consumer():
    async def scenario():
        draining, stalled = _Writer(), _Writer()
        draining.writable_now.clear()
        stalled.writable_now.clear()
        sockets = [_Socket(draining), _Socket(stalled)]
        first, second = (Connection(socket, lambda _: None) for socket in sockets)
        first.push(Frame({"n": 1}))
        second.push(Frame({"n": 1}))
        while first._resume is None or second._resume is None:  # the flush found both buffers full
            await asyncio.sleep(0.001)
        assert draining.writes == [] and stalled.writes == []
        first.push(Frame({"n": 2}))
        draining.writable_now.set()
        await asyncio.wait_for(_flushed(draining, 1), 5)
        for number in range(MAX_UNSENT + 1):
            second.push(Frame({"n": number}))
        assert second.closing == SLOW_CONSUMER and not second.queue
        await asyncio.sleep(0)
        await first.finished()
        await second.finished()
        return draining, stalled, sockets

    draining, stalled, sockets = asyncio.run(scenario())
    assert draining.writes == [Frame({"n": 1}).wire() + Frame({"n": 2}).wire()]
    assert stalled.writes == [] and sockets[1].closed_with == SLOW_CONSUMER


def test_a_slow_consumer_that_does_not_take_its_close_frame_in_time_is_aborted(monkeypatch):
    from gateway import stream_connection

    monkeypatch.setattr(stream_connection, "CLOSE_WAIT_SECONDS", 0.01)

    class _NeverClosing(_Socket):
        async def close(self, code: int, reason: str) -> None:
            await asyncio.Event().wait()  # the close frame never leaves: the send buffer stays full

    async def scenario():
        writer = _Writer()
        writer.writable_now.clear()
        connection = Connection(_NeverClosing(writer), lambda _: None)
        for number in range(MAX_UNSENT + 1):
            connection.push(Frame({"n": number}))
        assert connection.closing == SLOW_CONSUMER
        await asyncio.wait_for(connection._sender, 5)  # the close task: it gave up and aborted
        return writer

    assert asyncio.run(scenario()).aborted
