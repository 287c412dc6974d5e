"""Streams (`GET /api/v1/ws`) as async iterators, one per channel, that reconnect by themselves.

- `book_stream` keeps a `LocalBook` from the snapshot and the updates and yields it after each
  frame; an update whose `first_sequence` does not follow the book's `sequence` (a gap) makes
  it resubscribe, and the fresh snapshot replaces the book. So the book yielded is always the
  book `GET .../book` showed at its `sequence`.
- `trade_stream` yields each trade once, in `trade_id` order, across reconnections.
- `order_stream` yields the caller's `OrderData` and fills (`AssetTransactionData`).

A connection the server closes (a slow consumer is closed with 1013, a stopping service with
1001) or that drops is opened again after a short back-off, and the channel subscribed again:
the book starts from a new snapshot. A refused subscription (an unknown asset, a wrong key)
raises the `ApiError` the server's answer describes, and does not reconnect.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from order_service_client.errors import ApiError, error_from_answer
from order_service_client.models import AssetTransactionData, BookLevel, OrderData, _Answer

MAX_BACKOFF = 5.0


class TradeFrame(_Answer):
    """One trade of an asset, as the `trades` channel sends it."""

    asset_id: str
    trade_id: str
    price: Decimal
    quantity: Decimal
    taker_side: str
    timestamp: str


@dataclass
class LocalBook:
    """One asset's book kept from a stream: levels by price, at `sequence`."""

    asset_id: str
    sequence: int = -1
    bids: dict[Decimal, BookLevel] = field(default_factory=dict)
    asks: dict[Decimal, BookLevel] = field(default_factory=dict)

    def apply(self, frame: dict) -> bool:
        """Apply a snapshot or an update; False (nothing applied) when an update does not follow."""
        if frame["type"] == "snapshot":
            self.bids, self.asks = {}, {}
        elif frame["first_sequence"] != self.sequence + 1:
            return False
        for side, levels in ((self.bids, frame["bids"]), (self.asks, frame["asks"])):
            for level in levels:
                price = Decimal(level["price"])
                if Decimal(level["quantity"]) == 0:
                    side.pop(price, None)
                else:
                    side[price] = BookLevel(price=price, quantity=Decimal(level["quantity"]),
                                            order_count=int(level["order_count"]))
        self.sequence = frame["sequence"]
        return True

    def levels(self, depth: int | None = None) -> tuple[list[BookLevel], list[BookLevel]]:
        """Bids and asks, best first (`depth` of each when given)."""
        bids = [self.bids[price] for price in sorted(self.bids, reverse=True)]
        asks = [self.asks[price] for price in sorted(self.asks)]
        return (bids[:depth], asks[:depth]) if depth is not None else (bids, asks)

    @property
    def best_bid(self) -> Decimal | None:
        return max(self.bids) if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return min(self.asks) if self.asks else None


def stream_url(base_url: str) -> str:
    scheme, rest = base_url.rstrip("/").split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/api/v1/ws"


class _Channel:
    """One channel on its own connection: subscribe, read its frames, reconnect when it drops."""

    def __init__(self, base_url: str, token: str | None, subscribe: dict,
                 subscribed: asyncio.Event | None) -> None:
        self.url = stream_url(base_url)
        self.headers = {"Authorization": f"Bearer {token}"} if token else None
        self.subscribe = subscribe
        self.subscribed = subscribed
        self.connection: Any = None

    async def frames(self) -> AsyncIterator[dict]:
        """The channel's frames, across reconnections; a refusal raises."""
        failures = 0
        while True:
            try:
                async with connect(self.url, additional_headers=self.headers, max_size=None) as connection:
                    self.connection = connection
                    await self._subscribe()
                    failures = 0
                    if self.subscribed is not None:
                        self.subscribed.set()
                    async for text in connection:
                        frame = json.loads(text)
                        if "channel" in frame:
                            yield frame
                        elif frame.get("op") == "subscribe":
                            self._check(frame)
            except (ConnectionClosed, InvalidHandshake, OSError, asyncio.TimeoutError):
                pass  # the server closed it (1013 slow consumer, 1001 stopping) or the network dropped it
            finally:
                self.connection = None
                if self.subscribed is not None:
                    self.subscribed.clear()
            failures += 1
            await asyncio.sleep(min(MAX_BACKOFF, 0.1 * 2 ** failures))

    async def resubscribe(self) -> None:
        """Ask again (after a gap): the answer and a fresh snapshot follow on the connection."""
        await self.connection.send(json.dumps({**self.subscribe, "op": "unsubscribe"}))
        await self.connection.send(json.dumps(self.subscribe))

    async def _subscribe(self) -> None:
        await self.connection.send(json.dumps(self.subscribe))
        while True:  # frames before the answer: an auth refusal of the handshake's key comes first
            frame = json.loads(await self.connection.recv())
            if frame.get("op") in ("subscribe", "auth"):
                self._check(frame)
                if frame["op"] == "subscribe":
                    return

    @staticmethod
    def _check(answer: dict) -> None:
        if not answer.get("success"):
            error = answer.get("error") or {}
            status = {"UNAUTHORIZED": 401, "ASSET_NOT_FOUND": 404}.get(error.get("code"), 400)
            raise error_from_answer(status, {"error": error, "message": error.get("message", "")})


async def book_stream(base_url: str, asset_id: str, subscribed: asyncio.Event | None = None,
                      ) -> AsyncIterator[LocalBook]:
    """The asset's book after its snapshot and after each update (the same object, updated).

    `subscribed`, when given, is set while the channel is subscribed (on every stream): changes
    made after it is set are in the frames that follow."""
    channel = _Channel(base_url, None, {"op": "subscribe", "channel": "book", "asset_id": asset_id}, subscribed)
    book = LocalBook(asset_id)
    waiting_for_snapshot = True
    async for frame in channel.frames():
        if frame["channel"] != "book":
            continue
        if frame["type"] == "snapshot":
            waiting_for_snapshot = False
        elif waiting_for_snapshot:
            continue  # updates of the subscription a resubscription replaces
        if not book.apply(frame):
            waiting_for_snapshot = True
            await channel.resubscribe()
            continue
        yield book


async def trade_stream(base_url: str, asset_id: str, subscribed: asyncio.Event | None = None,
                       ) -> AsyncIterator[TradeFrame]:
    """Each trade of the asset once, in `trade_id` order (none repeated after a reconnection)."""
    channel = _Channel(base_url, None, {"op": "subscribe", "channel": "trades", "asset_id": asset_id},
                       subscribed)
    last = 0
    async for frame in channel.frames():
        if frame["channel"] != "trades":
            continue
        number = int(frame["trade_id"].rsplit("-", 1)[1])
        if number > last:
            last = number
            yield TradeFrame.model_validate(frame)


async def order_stream(base_url: str, token: str, subscribed: asyncio.Event | None = None,
                       ) -> AsyncIterator[OrderData | AssetTransactionData]:
    """The key's user's order changes (`OrderData`) and fills (`AssetTransactionData`), as they happen.

    Changes made while a connection was down are not sent again: after a reconnection, read
    `list_orders` for what may have changed meanwhile."""
    if not token:
        raise ApiError(401, "UNAUTHORIZED", "the orders channel needs a user's API key")
    channel = _Channel(base_url, token, {"op": "subscribe", "channel": "orders"}, subscribed)
    async for frame in channel.frames():
        if frame["channel"] == "orders":
            yield OrderData.model_validate(frame["data"])
        elif frame["channel"] == "fills":
            yield AssetTransactionData.model_validate(frame["data"])
