"""`/api/v1/ws`: the WebSocket of API.md "Streams": client ops in, channel frames out.

The socket's reading side runs here, one op at a time; its sending side is the
connection's queue (gateway/stream_connection.py), fed by the process's shared
subscriptions (gateway/stream_hub.py). Every bad frame is answered, never fatal; frames
over 64 KiB are refused by the WebSocket layer itself (close 1009, see gateway/cli.py).
"""

from __future__ import annotations

import logging

import orjson
from fastapi import APIRouter, WebSocket

from gateway.runtime import hash_key
from gateway.stream_connection import Connection

log = logging.getLogger(__name__)
router = APIRouter(tags=["streams"])

PUBLIC_CHANNELS = ("book", "trades")
MAX_ASSET_SUBSCRIPTIONS = 256  # per connection: bounds what one socket can make the hub hold


def _failure(op, code: str, message: str) -> dict:
    return {"op": op, "success": False, "error": {"code": code, "message": message}}


@router.websocket("/api/v1/ws")
async def stream(websocket: WebSocket) -> None:
    """Live book, trades and the user's own orders; see API.md "Streams"."""
    runtime = websocket.app.state.runtime
    hub = websocket.app.state.streams
    await websocket.accept()
    if not runtime.ready:
        await websocket.close(1013, "recovering")
        return
    connection = hub.connect(websocket)
    try:
        header = websocket.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if header:
            await _authenticate(runtime, connection, token if scheme.lower() == "bearer" else "")
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                connection.answer(_failure(None, "INVALID_MESSAGE", "Frames are JSON text"))
                continue
            await _handle(runtime, hub, connection, text)
    except Exception:  # the client vanished mid-op, or a bug: the socket goes, the process stays
        log.debug("websocket ended with an error", exc_info=True)
    finally:
        await connection.finished()


async def _authenticate(runtime, connection: Connection, token: str) -> None:
    owner = await runtime.authenticate(token) if token else None
    # A revocation or suspension applied while the registry answered may not have seen this
    # connection: ask again until the answer is as new as what this process applied.
    for _ in range(3):
        if owner is None or not runtime.keys.stale(owner):
            break
        owner = await runtime.authenticate(token)
    connection.username = connection.key_hash = None
    if owner is None or runtime.keys.stale(owner):
        connection.answer(_failure("auth", "UNAUTHORIZED", "The token is not valid"))
        return
    if owner.suspended:
        connection.answer(_failure("auth", "USER_SUSPENDED", "The user is suspended"))
        return
    connection.username, connection.key_hash = owner.username, hash_key(token)
    connection.answer({"op": "auth", "success": True, "username": owner.username})


async def _handle(runtime, hub, connection: Connection, text: str) -> None:
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError:
        connection.answer(_failure(None, "INVALID_MESSAGE", "The frame is not JSON"))
        return
    op = frame.get("op") if isinstance(frame, dict) else None
    if not isinstance(op, str):
        connection.answer(_failure(None, "INVALID_MESSAGE", "A frame is an object with an op"))
        return
    if op == "auth":
        token = frame.get("token")
        if not isinstance(token, str):
            connection.answer(_failure(op, "INVALID_MESSAGE", "auth takes a token string"))
            return
        if connection.orders:
            hub.unwatch(connection, "orders", None)  # a new identity does not inherit the old one's orders
        await _authenticate(runtime, connection, token)
        return
    if op not in ("subscribe", "unsubscribe"):
        connection.answer(_failure(op, "INVALID_MESSAGE", f"Unknown op {op[:40]!r}"))
        return
    channel = frame.get("channel")
    if channel not in (*PUBLIC_CHANNELS, "orders"):
        connection.answer(_failure(op, "INVALID_MESSAGE", "channel is one of book, trades, orders"))
        return
    asset_id = frame.get("asset_id")
    if channel != "orders" and not isinstance(asset_id, str):
        connection.answer(_failure(op, "INVALID_MESSAGE", f"{channel} takes an asset_id"))
        return
    done = {"op": op, "success": True, "channel": channel}
    if channel != "orders":
        done["asset_id"] = asset_id
    if op == "unsubscribe":
        hub.unwatch(connection, channel, asset_id)
        connection.answer(done)
        return
    if channel == "orders":
        if connection.username is None:
            connection.answer(_failure(op, "UNAUTHORIZED", "Authenticate before subscribing to orders"))
        elif not await hub.watch_orders(connection, done):
            connection.answer(_failure(op, "UNAVAILABLE", "The account service did not answer; try again"))
        return
    spec = runtime.known_specs().get(asset_id) if len(asset_id) <= 10 else None
    if spec is None and 0 < len(asset_id) <= 10:
        spec = await runtime.spec(asset_id)
    if spec is None:
        connection.answer(_failure(op, "ASSET_NOT_FOUND", "Asset not found"))
        return
    if len(connection.books) + len(connection.trades) >= MAX_ASSET_SUBSCRIPTIONS and \
            asset_id not in (connection.books if channel == "book" else connection.trades):
        connection.answer(_failure(op, "TOO_MANY_SUBSCRIPTIONS", f"At most {MAX_ASSET_SUBSCRIPTIONS}"))
        return
    if not await hub.watch_market(connection, spec, channel, done):
        connection.answer(_failure(op, "UNAVAILABLE", "The book did not answer; try again"))
