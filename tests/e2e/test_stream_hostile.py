"""Bad input on the WebSocket: each answered as API.md says or closed cleanly, nothing leaking.

The gateway's subscription registry (`/health` `streams`) must be empty again once the
sockets are gone, and its memory must not grow over many connect/disconnect cycles.
"""

from __future__ import annotations

import socket

import psutil
import pytest
from websockets.exceptions import ConnectionClosed

from tests.e2e.api import eventually
from tests.e2e.streams import op, open_stream, receive, receive_until, send

CYCLES = 2000


def _streams(api) -> dict:
    return api.get("/health").json()["streams"]


def _idle(api) -> dict:
    # A subscription nobody watches ends when its long poll returns (10 s at most).
    return eventually(lambda: _streams(api), lambda streams: not any(streams.values()), deadline=30.0,
                      what="no connections or subscriptions")


def _error_code(answer: dict) -> str:
    assert answer["success"] is False, answer
    return answer["error"]["code"]


def test_bad_frames_are_answered_and_the_connection_stays_open(api, service):
    asset_id = api.new_asset()
    with open_stream(service.base_url) as connection:
        for text in ("not json", "[1, 2]", '{"op": 5}', "{}", '"just a string"'):
            connection.send(text)
            assert _error_code(receive(connection)) == "INVALID_MESSAGE"
        connection.send(b"\x00\x01binary")
        assert _error_code(receive(connection)) == "INVALID_MESSAGE"
        assert _error_code(op(connection, {"op": "dance"})) == "INVALID_MESSAGE"
        assert _error_code(op(connection, {"op": "subscribe", "channel": "gossip", "asset_id": asset_id})) \
            == "INVALID_MESSAGE"
        assert _error_code(op(connection, {"op": "subscribe", "channel": "book"})) == "INVALID_MESSAGE"
        assert _error_code(op(connection, {"op": "subscribe", "channel": "book", "asset_id": "NOPE404"})) \
            == "ASSET_NOT_FOUND"
        assert _error_code(op(connection, {"op": "subscribe", "channel": "trades", "asset_id": "x" * 5000})) \
            == "ASSET_NOT_FOUND"
        assert _error_code(op(connection, {"op": "subscribe", "channel": "orders"})) == "UNAUTHORIZED"
        assert _error_code(op(connection, {"op": "auth", "token": "wrong"})) == "UNAUTHORIZED"
        assert _error_code(op(connection, {"op": "subscribe", "channel": "orders"})) == "UNAUTHORIZED"
        answer = op(connection, {"op": "subscribe", "channel": "book", "asset_id": asset_id})
        assert answer["success"] is True
        assert receive(connection)["type"] == "snapshot"


def test_a_wrong_token_in_the_handshake_is_refused_as_an_op_would_be(api, service):
    with open_stream(service.base_url, token="not-a-key") as connection:
        assert _error_code(receive(connection)) == "UNAUTHORIZED"
        assert _error_code(op(connection, {"op": "subscribe", "channel": "orders"})) == "UNAUTHORIZED"


def test_a_frame_over_64_kib_closes_the_connection_with_1009(api, service):
    with open_stream(service.base_url) as connection:
        send(connection, {"op": "subscribe", "channel": "book", "asset_id": "A" * (65 * 1024)})
        with pytest.raises(ConnectionClosed) as closed:
            receive(connection)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_thousands_of_subscribe_and_unsubscribe_ops_leave_nothing_behind(api, service):
    asset_id = api.new_asset()
    # Sent in windows the server's queue holds (1000 unsent frames): a client that sends
    # thousands of ops without reading their answers is a slow consumer, and is closed.
    with open_stream(service.base_url) as connection:
        for _ in range(6):
            for _ in range(250):
                send(connection, {"op": "subscribe", "channel": "trades", "asset_id": asset_id})
                send(connection, {"op": "unsubscribe", "channel": "trades", "asset_id": asset_id})
            answers = [receive_until(connection, lambda frame: "op" in frame) for _ in range(500)]
            assert all(answer["success"] for answer in answers)
            assert [answer["op"] for answer in answers] == ["subscribe", "unsubscribe"] * 250
        assert _streams(api)["connections"] >= 1
    _idle(api)


def test_connections_dropped_mid_handshake_leave_the_gateway_serving(api, service):
    host, port = "127.0.0.1", service.port
    for partial in (b"GET /api/v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n",
                    b"GET /api/v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                    b"\x16\x03\x01garbage"):
        for _ in range(50):
            with socket.create_connection((host, port), timeout=5) as raw:
                raw.sendall(partial)
    _idle(api)
    with open_stream(service.base_url) as connection:
        assert _error_code(op(connection, {"op": "nothing"})) == "INVALID_MESSAGE"


def test_a_reader_that_stops_reading_is_closed_with_1013_and_others_keep_receiving(api, service):
    asset_id = api.new_asset()
    seller = api.new_user(assets={asset_id: 10})
    buyer = api.new_user(usd=1000)
    # A small receive buffer and a client that never reads: the server's queue must grow.
    # Every op is answered with a frame, so ops sent without reading fill the queue fastest.
    stalled = open_stream(service.base_url, max_queue=1, sock=_small_buffer_socket(service.port))
    watcher = open_stream(service.base_url)
    try:
        for connection in (stalled, watcher):
            assert op(connection, {"op": "subscribe", "channel": "trades", "asset_id": asset_id})["success"]
        unsubscribe = {"op": "unsubscribe", "channel": "book", "asset_id": asset_id}
        sent = 0
        reset = False  # the server dropped the socket while the client was still writing to it
        while _streams(api)["connections"] > 1 and not reset:
            assert sent < 2_000_000, "the stalled reader was never closed"
            try:
                for _ in range(5000):
                    send(stalled, unsubscribe)
            except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
                reset = True
            sent += 5000
        eventually(lambda: _streams(api)["connections"], lambda count: count == 1,
                   what="the stalled reader's connection to go")
        api.place(seller, asset_id, "limit_sell", 1, "2.00")
        api.place(buyer, asset_id, "market_buy", 1)
        assert receive_until(watcher, lambda frame: frame.get("channel") == "trades")["price"] in ("2", "2.00")
        if not reset:
            # Its close frame arrives once it reads; when the server's close met a client still writing,
            # the kernel reset the connection and the frame is lost with it (the socket is gone all the same).
            with pytest.raises((ConnectionClosed, ConnectionResetError)) as closed:
                while True:
                    receive(stalled)
            if isinstance(closed.value, ConnectionClosed) and closed.value.rcvd is not None:
                assert closed.value.rcvd.code == 1013 and closed.value.rcvd.reason == "slow consumer"
    finally:
        stalled.close()
        watcher.close()
    _idle(api)


def _small_buffer_socket(port: int) -> socket.socket:
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    return raw


def test_many_connect_and_disconnect_cycles_leak_neither_subscriptions_nor_memory(api, service):
    asset_id = api.new_asset()
    user = api.new_user()
    gateway = psutil.Process(service.process.pid)

    def cycles(count: int) -> None:
        for index in range(count):
            with open_stream(service.base_url, user.api_key if index % 2 else None) as connection:
                send(connection, {"op": "subscribe", "channel": "book", "asset_id": asset_id})
                send(connection, {"op": "subscribe", "channel": "trades", "asset_id": asset_id})
                if index % 2:
                    send(connection, {"op": "subscribe", "channel": "orders"})
                if index % 3 == 0:
                    receive_until(connection, lambda frame: frame.get("type") == "snapshot")

    cycles(200)  # warm up: allocator arenas, caches
    _idle(api)
    before = gateway.memory_info().rss
    cycles(CYCLES)
    _idle(api)
    grown = gateway.memory_info().rss - before
    assert grown < 16 * 1024 * 1024, f"the gateway grew by {grown / 1e6:.1f} MB over {CYCLES} connections"
