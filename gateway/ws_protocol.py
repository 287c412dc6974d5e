"""The WebSocket protocol the gateway serves: uvicorn's sans-I/O one, and a way around its per-message send.

A frame fanned out to hundreds of sockets is the same bytes for each of them: server
frames are not masked and no extension is negotiated (no per-message compression, see
gateway/cli.py), so a text frame is a fixed header and the UTF-8 body. Sending it through
ASGI costs one `websocket.send` per socket per frame (the `websockets` library builds the
frame again each time, ~3.4 µs). `StreamProtocol` puts a `FrameWriter` in each socket's
scope (`scope["extensions"][FRAME_WRITER]`), through which a stream connection writes
many ready-made frames in one transport write, with uvicorn's own flow control (`writable`)
and its state (nothing after a close). Pings, pongs, the close handshake and everything
read stay with the protocol, on the same event loop, each written whole.
"""

from __future__ import annotations

import socket
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

FRAME_WRITER = "order_service.frame_writer"
# The kernel's send buffer of a stream socket. Left to autotuning it grows to tcp_wmem's maximum
# (4 MiB here): a reader that stopped reading would be sent thousands of frames before its queue
# counted any and it was closed as a slow consumer (1013). 128 KiB (Linux books twice that) holds
# ~800 frames of the usual size and keeps a reader 100 ms away fed at over 1 MB/s.
SEND_BUFFER_BYTES = 128 * 1024


def text_frame(payload: bytes) -> bytes:
    """A complete, unfragmented, unmasked server text frame (RFC 6455 5.2) around UTF-8 `payload`."""
    length = len(payload)
    if length < 126:
        return bytes((0x81, length)) + payload
    if length < 1 << 16:
        return bytes((0x81, 126)) + length.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + length.to_bytes(8, "big") + payload


class FrameWriter:
    """Writes whole server frames to one accepted WebSocket, beside its protocol."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    def open(self) -> bool:
        """Accepted, and no close sent or received: frames may still go."""
        protocol = self._protocol
        return (protocol.handshake_complete and not protocol.close_sent and not protocol.disconnected
                and not protocol.transport.is_closing())

    def is_writable(self) -> bool:
        return self._protocol.writable.is_set()

    async def writable(self) -> None:
        """Wait while the socket's send buffer is over its high-water mark (uvicorn's flow control)."""
        await self._protocol.writable.wait()

    def write(self, frames: bytes) -> None:
        self._protocol.transport.write(frames)

    def abort(self) -> None:
        """Drop the connection at once (a peer that did not take even a close frame in time)."""
        self._protocol.transport.abort()


class StreamProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, offering a `FrameWriter` to the app, on a socket
    whose send buffer is `SEND_BUFFER_BYTES`."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            except OSError:  # not a TCP socket (a test's pipe): its own buffer stays
                pass

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # unset when the handshake was refused
        if scope is not None:
            scope["extensions"][FRAME_WRITER] = FrameWriter(self)
