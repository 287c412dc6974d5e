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

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

FRAME_WRITER = "order_service.frame_writer"


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


class StreamProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, offering a `FrameWriter` to the app."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # unset when the handshake was refused
        if scope is not None:
            scope["extensions"][FRAME_WRITER] = FrameWriter(self)
