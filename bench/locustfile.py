"""Locust load for a running order service: traders that place, cancel and read orders.

How to run it:

    make run                      # shell 1: the service on http://127.0.0.1:8000, data in ./data
    make load                     # shell 2: locust headless for LOAD_TIME against LOAD_HOST

    make load LOAD_HOST=http://127.0.0.1:8000 LOAD_TIME=60s LOAD_USERS=50 LOAD_SPAWN_RATE=10

`make load` writes locust's reports under bench/results/ (git-ignored): load.html,
load_stats.csv, load_stats_history.csv, load_failures.csv, load_exceptions.csv.
Locust exits non-zero when any request failed.

The admin token comes from $ORDER_SERVICE_ADMIN_TOKEN, else from
$ORDER_SERVICE_DATA_DIR/admin_token, else from ./data/admin_token (where `make run`
writes the one it generates). Run directly:

    ORDER_SERVICE_ADMIN_TOKEN=... .venv/bin/locust -f bench/locustfile.py --headless \
        --host http://127.0.0.1:8000 -u 50 -r 10 -t 60s

What a simulated user does: at test start the asset(s) are created once (409
ASSET_EXISTS is fine); each simulated user then creates its own service user and
API key with the admin token, is funded with USD and every asset, and from then on
uses only its own key. Every HTTP call goes through the project's Python client
(`order_service_client`, without its retries so that each request counts once),
timed around the call as a locust request of type `HTTP`. Tasks, weighted: limit buys and sells around a mid of 100.00
(± 0.50, so they cross and settle), small market orders, cancels of its own open
orders, reads of one order, of its order list, its portfolio and balances, and the
order book. A call counts as a success when it answers, or raises one of the expected
refusals (422 INSUFFICIENT_BALANCE on an order, 409 ORDER_NOT_OPEN on a cancel that
raced a fill); anything else — any 5xx, an unexpected 4xx, a wrong error code — is a
failure.

A quarter of the users (`StreamingTrader`, weight `LOAD_WS_WEIGHT` against `Trader`'s
`LOAD_HTTP_WEIGHT`, 1 and 3 by default; `LOAD_WS_WEIGHT=0` leaves streams out) trade the
same way while holding a WebSocket (`/api/v1/ws`, API.md "Streams"), authenticated by
its key, subscribed to `book` of one asset and to its own `orders`. Every frame it
receives is a locust request of type `WS` named `ws frame: book`, `ws frame: orders` or
`ws frame: fills`, so the stats count them; the response time of an `orders` or `fills`
frame is its delay from the server's timestamp of the change (`updated_at`,
`timestamp`; one clock when locust runs on the service's machine), a book frame's is 0
(it carries no time). `ws subscribe` times connecting and both subscriptions; a socket
the server closes while the user runs (a slow consumer, 1013) is a failed `ws closed`,
and the user connects again. Note that locust's `Aggregated` row (requests/s and
percentiles of all requests) then counts frames too: read the HTTP figures per endpoint.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import time
import uuid
from datetime import datetime
from collections import Counter
from pathlib import Path

from locust import User, between, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load_setup import (  # noqa: E402
    ASSET_PER_USER, LOT, USD_PER_USER, asset_body, random_limit_price, random_quantity, read_admin_token,
)
from order_service_client import ApiError, Client, Conflict  # noqa: E402

ASSETS = [asset.strip() for asset in os.environ.get("LOAD_ASSETS", "LOADA,LOADB").split(",") if asset.strip()]
OPEN_STATUSES = ("confirmed", "processing")
MAX_TRACKED_ORDERS = 200

log = logging.getLogger("locustfile")
logging.getLogger("httpx").setLevel(logging.WARNING)
EXPECTED_REFUSALS: Counter = Counter()  # (status, code) answered and counted as a success


@events.test_start.add_listener
def create_assets(environment, **_kwargs) -> None:
    """Create the traded assets once per test (an existing asset is fine)."""
    token = read_admin_token()
    if not token:
        log.error("no admin token: set ORDER_SERVICE_ADMIN_TOKEN or run next to the service's data/admin_token")
        environment.process_exit_code = 2
        if environment.runner is not None:
            environment.runner.quit()
        return
    with Client(environment.host, token, timeout=30) as admin:
        for asset_id in ASSETS:
            try:
                admin.create_asset(**asset_body(asset_id))
            except Conflict:
                pass  # ASSET_EXISTS: made by an earlier run
            except ApiError as error:
                log.error("creating asset %s: %s", asset_id, error)


@events.test_stop.add_listener
def report_refusals(environment, **_kwargs) -> None:
    """Say how many of the successes were expected refusals (they are not failures)."""
    refusals = ", ".join(f"{name}: {count}" for name, count in sorted(EXPECTED_REFUSALS.items())) or "none"
    log.info("expected refusals counted as successes: %s", refusals)


class _Measured:
    """Time one client call as a locust request named `name`: a success when it answers, or when it
    raises an expected refusal ((status, code) in `expected`); a failure otherwise."""

    def __init__(self, user: User, name: str, expected: tuple[tuple[int, str], ...] = ()) -> None:
        self.user, self.name, self.expected = user, name, expected

    def __enter__(self) -> _Measured:
        self.started = time.perf_counter()
        return self

    def __exit__(self, kind, error, _traceback) -> bool:
        if kind is not None and not issubclass(kind, Exception):
            return False  # the user is being stopped mid-call (GreenletExit): no request outcome
        elapsed_ms = (time.perf_counter() - self.started) * 1000
        if isinstance(error, ApiError) and (error.status, error.code) in self.expected:
            EXPECTED_REFUSALS[f"{error.status} {error.code}"] += 1
            error = None
        self.user.environment.events.request.fire(request_type="HTTP", name=self.name, response_time=elapsed_ms,
                                                  response_length=0, exception=error, context={})
        return True  # a failure is counted, not raised


class Trader(User):
    """One trader with its own API key, talking to the service through the Python client
    (`order_service_client`, client/): typed answers, typed errors carrying the API's code."""

    weight = int(os.environ.get("LOAD_HTTP_WEIGHT", "3"))
    wait_time = between(float(os.environ.get("LOAD_WAIT_MIN", "0.05")), float(os.environ.get("LOAD_WAIT_MAX", "0.5")))

    def on_start(self) -> None:
        self.rng = random.Random()
        self.open_orders: list[str] = []
        self.api: Client | None = None
        token = read_admin_token()
        if not token:
            raise RuntimeError("no admin token (ORDER_SERVICE_ADMIN_TOKEN or data/admin_token)")
        username = f"load_{uuid.uuid4().hex[:16]}"
        # retries=0: a 503 or a timeout is a failure of this request in the stats, not a hidden retry.
        with Client(self.host, token, retries=0, timeout=30) as admin:
            with _Measured(self, "admin: create user"):
                self.api_key = admin.create_user(username).api_key
            for asset_id, amount in [("USD", USD_PER_USER), *((asset, ASSET_PER_USER) for asset in ASSETS)]:
                with _Measured(self, "admin: deposit"):
                    admin.deposit(username, asset_id, amount)
        self.headers = {"Authorization": f"Bearer {self.api_key}"}
        self.api = Client(self.host, self.api_key, retries=0, timeout=30)

    def on_stop(self) -> None:
        if self.api is not None:
            self.api.close()

    def _remember(self, order) -> None:
        if order is not None and order.status in OPEN_STATUSES:
            self.open_orders.append(order.order_id)
            if len(self.open_orders) > MAX_TRACKED_ORDERS:
                self.open_orders.pop(0)

    @task(10)
    def place_limit_order(self) -> None:
        order = {"asset_id": self.rng.choice(ASSETS), "order_type": self.rng.choice(("limit_buy", "limit_sell")),
                 "quantity": random_quantity(self.rng), "price": random_limit_price(self.rng)}
        placed = None
        with _Measured(self, "POST /orders (limit)", ((422, "INSUFFICIENT_BALANCE"),)):
            placed = self.api.place_order(order)
        self._remember(placed)

    @task(2)
    def place_market_order(self) -> None:
        order = {"asset_id": self.rng.choice(ASSETS), "order_type": self.rng.choice(("market_buy", "market_sell")),
                 "quantity": str(LOT * self.rng.randint(1, 10))}
        with _Measured(self, "POST /orders (market)", ((422, "INSUFFICIENT_BALANCE"),)):
            self.api.place_order(order)

    @task(4)
    def cancel_open_order(self) -> None:
        if not self.open_orders:
            return
        order_id = self.open_orders.pop(self.rng.randrange(len(self.open_orders)))
        with _Measured(self, "DELETE /orders/[id]", ((409, "ORDER_NOT_OPEN"),)):
            self.api.cancel_order(order_id)

    @task(2)
    def get_order(self) -> None:
        if not self.open_orders:
            return
        order_id = self.rng.choice(self.open_orders)
        order = None
        with _Measured(self, "GET /orders/[id]"):
            order = self.api.get_order(order_id)
        if order is not None and order.status not in OPEN_STATUSES and order_id in self.open_orders:
            self.open_orders.remove(order_id)

    @task(3)
    def list_orders(self) -> None:
        status = self.rng.choice((None, "confirmed", "completed"))
        with _Measured(self, "GET /orders"):
            self.api.list_orders(limit=20, **({"status": status} if status else {}))

    @task(2)
    def portfolio(self) -> None:
        with _Measured(self, "GET /portfolio"):
            self.api.get_portfolio()

    @task(1)
    def balances(self) -> None:
        with _Measured(self, "GET /balances"):
            self.api.list_balances()

    @task(1)
    def order_book(self) -> None:
        with _Measured(self, "GET /assets/[id]/book"):
            self.api.get_book(self.rng.choice(ASSETS), depth=10)


def _seconds_since(stamp: str | None) -> float:
    """Seconds from an ISO 8601 UTC timestamp of the server's to now (0 if there is none)."""
    if not stamp:
        return 0.0
    try:
        return max(0.0, time.time() - datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0.0


class StreamingTrader(Trader):
    """A trader that holds a WebSocket on `book` of one asset and its own `orders` while it trades over HTTP."""

    weight = int(os.environ.get("LOAD_WS_WEIGHT", "1"))

    def on_start(self) -> None:
        super().on_start()
        import gevent

        self.asset_id = self.rng.choice(ASSETS)
        self.websocket = None
        self.stopping = False
        self.reader = gevent.spawn(self._hold_stream)

    def on_stop(self) -> None:
        self.stopping = True
        if self.websocket is not None:
            self.websocket.close()
        if getattr(self, "reader", None) is not None:
            self.reader.join(timeout=5)
            self.reader.kill()

    def _fire(self, name: str, seconds: float, length: int, exception: Exception | None = None) -> None:
        self.environment.events.request.fire(request_type="WS", name=name, response_time=seconds * 1000,
                                             response_length=length, exception=exception, context={})

    def _subscribe(self, websocket) -> None:
        """Subscribe to the book and to the user's orders (the key went in the handshake); raise if refused."""
        for subscribe in ({"op": "subscribe", "channel": "book", "asset_id": self.asset_id},
                          {"op": "subscribe", "channel": "orders"}):
            websocket.send(json.dumps(subscribe))
        answers = 0
        while answers < 3:  # the handshake's auth, then both subscriptions
            frame = json.loads(websocket.recv(timeout=30))
            if "op" not in frame:
                continue  # the book's snapshot may come before the orders answer
            if not frame.get("success"):
                raise RuntimeError(f"{frame.get('op')} refused: {frame.get('error')}")
            answers += 1

    def _hold_stream(self) -> None:
        """Connect, subscribe, report every frame; after a close or a failure, connect again (1 s later)."""
        from websockets.sync.client import connect

        url = self.host.replace("https://", "wss://").replace("http://", "ws://") + "/api/v1/ws"
        while not self.stopping:
            subscribed = False
            started = time.perf_counter()
            try:
                with connect(url, additional_headers=self.headers, open_timeout=30, max_size=None) as websocket:
                    self.websocket = websocket
                    self._subscribe(websocket)
                    subscribed = True
                    self._fire("ws subscribe", time.perf_counter() - started, 0)
                    for message in websocket:
                        frame = json.loads(message)
                        channel = frame.get("channel")
                        if channel == "orders":
                            delay = _seconds_since(frame["data"].get("updated_at"))
                        elif channel == "fills":
                            delay = _seconds_since(frame["data"].get("timestamp"))
                        else:
                            delay = 0.0
                        self._fire(f"ws frame: {channel or frame.get('op')}", delay, len(message))
                    if not self.stopping:
                        raise ConnectionError("the server closed the stream")
            except Exception as error:  # a close (1013 ...), a reset, a refusal
                if self.stopping:
                    return
                self._fire("ws closed" if subscribed else "ws subscribe", 0.0, 0, error)
                time.sleep(1.0)
