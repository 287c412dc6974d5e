"""A small WebSocket client for API.md "Streams" (the `websockets` package, sync API), and a
book that applies snapshot and update frames, for comparing with `GET .../book`.

Frames are awaited with deadlines, never with sleeps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal

from websockets.sync.client import ClientConnection, connect

FRAME_DEADLINE = 15.0


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/api/v1/ws"


def open_stream(base_url: str, token: str | None = None, **options) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return connect(ws_url(base_url), additional_headers=headers, open_timeout=FRAME_DEADLINE,
                   max_size=None, **options)


def send(connection: ClientConnection, frame: dict) -> None:
    connection.send(json.dumps(frame))


def receive(connection: ClientConnection, deadline: float = FRAME_DEADLINE) -> dict:
    return json.loads(connection.recv(timeout=deadline))


def receive_until(connection: ClientConnection, condition: Callable[[dict], bool],
                  deadline: float = FRAME_DEADLINE, seen: list | None = None) -> dict:
    """Receive frames until one satisfies `condition`; fail after `deadline` seconds."""
    give_up = time.monotonic() + deadline
    while True:
        remaining = give_up - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no matching frame within {deadline}s; seen {seen[-5:] if seen else ''}")
        frame = receive(connection, remaining)
        if seen is not None:
            seen.append(frame)
        if condition(frame):
            return frame


def op(connection: ClientConnection, frame: dict, seen: list | None = None) -> dict:
    """Send an op and return its answer (frames before it go to `seen`)."""
    send(connection, frame)
    return receive_until(connection, lambda answer: "op" in answer, seen=seen)


class StreamBook:
    """A book rebuilt from `book` frames of one asset."""

    def __init__(self) -> None:
        self.sequence: int | None = None
        self.sides: dict[str, dict[Decimal, tuple[Decimal, int]]] = {"bids": {}, "asks": {}}

    def apply(self, frame: dict) -> None:
        if frame["type"] == "snapshot":
            self.sequence = frame["sequence"]
            for side in ("bids", "asks"):
                self.sides[side] = {Decimal(level["price"]): (Decimal(level["quantity"]), level["order_count"])
                                    for level in frame[side]}
            return
        assert frame["first_sequence"] == self.sequence + 1, (frame, self.sequence)
        self.sequence = frame["sequence"]
        for side in ("bids", "asks"):
            for level in frame[side]:
                price, quantity = Decimal(level["price"]), Decimal(level["quantity"])
                if quantity == 0:
                    assert level["order_count"] == 0, level
                    self.sides[side].pop(price, None)
                else:
                    self.sides[side][price] = (quantity, level["order_count"])

    def levels(self, side: str) -> list[tuple[Decimal, Decimal, int]]:
        prices = sorted(self.sides[side], reverse=side == "bids")
        return [(price, *self.sides[side][price]) for price in prices]
