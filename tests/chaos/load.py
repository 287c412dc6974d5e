"""HTTP load for chaos tests that keep one service running while a part of it fails.

A market of two account shards and two book actors: an asset on each book
and users on each shard (the test knows the routing functions, so it can tell
which actors an answer went through). Clients place and cancel orders and the
admin creates users, on several threads, until told to stop; some orders are
stops (stop-loss or take-profit around the traded band) and some requests
amend an open order or waiting stop (fewer lots, a new price). Every answer is
recorded: whether it keeps the contract (`contract_problem`), and, for a
success, when its request was sent and which actors it went through, so a test
can ask whether requests sent after a moment succeeded through a given actor.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import httpx

from actors.config import book_actor_for, shard_for
from tests.chaos.checks import Acknowledged, contract_problem
from tests.e2e.api import Api, User, assert_envelope, unique_suffix

SHARDS = 2
BOOKS = 2
# Settings that give the service the layout above.
LAYOUT = {"ORDER_SERVICE_SHARDS": str(SHARDS), "ORDER_SERVICE_BOOK_ACTORS": str(BOOKS)}
USERS_PER_SHARD = 3
USD_PER_USER = 100_000
LOTS_PER_USER = 1_000


def shard_stream(username: str) -> str:
    return f"shard-{shard_for(username, SHARDS)}"


def book_stream(asset_id: str) -> str:
    return f"book-{book_actor_for(asset_id, BOOKS)}"


@dataclass
class Market:
    """The assets and funded users of one test, and what was deposited."""

    asset_ids: list[str]
    users: list[User]
    deposited: dict[str, Decimal]

    @classmethod
    def create(cls, api: Api, usd: int = USD_PER_USER, lots: int = LOTS_PER_USER) -> Market:
        """List an asset on every book and fund USERS_PER_SHARD users on every shard with each."""
        asset_ids = [_asset_on_book(api, book) for book in range(BOOKS)]
        users = _funded_users(api, asset_ids, usd, lots)
        deposited = {"USD": Decimal(usd * len(users)),
                     **{asset_id: Decimal(lots * len(users)) for asset_id in asset_ids}}
        return cls(asset_ids, users, deposited)


def _asset_on_book(api: Api, book: int) -> str:
    """List an asset that the routing puts on the given book actor."""
    while True:
        asset_id = f"K{unique_suffix().upper()}"[:10]
        if book_actor_for(asset_id, BOOKS) == book:
            break
    body = {"asset_id": asset_id, "name": f"Chaos {asset_id}", "tick_size": "0.01", "lot_size": "1"}
    assert_envelope(api.admin_post("/api/v1/admin/assets", body), 201, True)
    return asset_id


def _funded_users(api: Api, asset_ids: list[str], usd: int, lots: int) -> list[User]:
    users: list[User] = []
    wanted = Counter({shard: USERS_PER_SHARD for shard in range(SHARDS)})
    while +wanted:
        username = f"ck{unique_suffix()}"
        shard = shard_for(username, SHARDS)
        if wanted[shard] <= 0:
            continue
        wanted[shard] -= 1
        data = assert_envelope(api.admin_post("/api/v1/admin/users", {"username": username}), 201, True)
        user = User(username, data["api_key"])
        api.deposit(user, "USD", usd)
        for asset_id in asset_ids:
            api.deposit(user, asset_id, lots)
        users.append(user)
    return users


class Answers:
    """Every answer the clients got: contract problems, successes by the actors they went through."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.statuses: Counter = Counter()
        self.problems: list[str] = []
        self.successes: list[tuple[float, frozenset[str]]] = []  # (when the request was sent, streams)
        self.unknown_outcome: list[tuple[User, dict]] = []  # orders answered 503: (owner, request body)
        self.created_users: list[User] = []

    def record(self, sent_at: float, response: httpx.Response, streams: frozenset[str]) -> None:
        problem = contract_problem(response)
        with self.changed:
            self.statuses[response.status_code] += 1
            if problem is not None:
                self.problems.append(problem)
            if 200 <= response.status_code < 300:
                self.successes.append((sent_at, streams))
            self.changed.notify_all()

    def problem(self, text: str) -> None:
        with self.changed:
            self.problems.append(text)
            self.changed.notify_all()

    def wait_for_successes(self, streams: list[str], moment: float, count: int, deadline: float) -> dict[str, int]:
        """Wait until, for every stream, `count` requests sent at or after `moment` succeeded through it."""
        with self.changed:
            self.changed.wait_for(lambda: all(self._successes_since(stream, moment) >= count for stream in streams),
                                  timeout=deadline)
            return {stream: self._successes_since(stream, moment) for stream in streams}

    def pause(self, seconds: float) -> None:
        """Wait for the next answer, at most `seconds` (paces a poll while clients run)."""
        with self.changed:
            self.changed.wait(timeout=seconds)

    def _successes_since(self, stream: str, moment: float) -> int:
        return sum(1 for sent_at, streams in self.successes if sent_at >= moment and stream in streams)


def client_loop(base_url: str, admin_token: str, market: Market, seed: float, acknowledged: Acknowledged,
                answers: Answers, stop: threading.Event) -> None:
    """Place, cancel and create users until `stop` is set; record every answer."""
    rng = random.Random(seed)
    admin_headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=base_url, timeout=90.0) as client:
        while not stop.is_set():
            user = rng.choice(market.users)
            roll = rng.random()
            sent_at = time.monotonic()
            body = None
            try:
                if roll < 0.06:
                    username = f"late{unique_suffix()}"
                    response = client.post("/api/v1/admin/users", json={"username": username},
                                           headers=admin_headers)
                    answers.record(sent_at, response, frozenset({"registry"}))
                    if response.status_code == 201:
                        with answers.changed:
                            answers.created_users.append(User(username, response.json()["data"]["api_key"]))
                    continue
                if roll < 0.25:
                    mine = acknowledged.open_orders(user.username)
                    if not mine:
                        continue
                    order = rng.choice(mine)
                    asset_id = order["asset_id"]
                    if roll < 0.19:
                        response = client.delete(f"/api/v1/orders/{order['order_id']}", headers=user.headers)
                    else:
                        response = client.patch(f"/api/v1/orders/{order['order_id']}", headers=user.headers,
                                                json=amend_body(rng, order))
                else:
                    asset_id = rng.choice(market.asset_ids)
                    body = {"asset_id": asset_id, "quantity": str(rng.randint(1, 5)),
                            "client_order_id": f"c{unique_suffix()}"}
                    if roll < 0.35:
                        body["order_type"] = rng.choice(["market_buy", "market_sell"])
                    elif roll < 0.41:
                        body.update(stop_fields(rng))
                    else:
                        body["order_type"] = rng.choice(["limit_buy", "limit_sell"])
                        body["price"] = f"{100 + rng.randint(-5, 5)}.00"
                    response = client.post("/api/v1/orders", json=body, headers=user.headers)
            except httpx.TransportError as error:
                # Only parts behind the gateway fail here: it must answer every request.
                answers.problem(f"the gateway did not answer: {error!r}")
                return
            answers.record(sent_at, response, frozenset({shard_stream(user.username), book_stream(asset_id)}))
            if response.status_code in (200, 201):
                acknowledged.record(response.json()["data"])
            elif response.status_code == 503 and body is not None:
                with answers.changed:
                    answers.unknown_outcome.append((user, body))


def stop_fields(rng: random.Random) -> dict:
    """A stop order around the traded band (refused 422 STOP_WOULD_TRIGGER when it already holds)."""
    fields = {"stop_kind": rng.choice(["stop_loss", "take_profit"]), "stop_price": f"{100 + rng.randint(-6, 6)}.00"}
    if rng.random() < 0.3:
        return {**fields, "order_type": "market_sell"}
    return {**fields, "order_type": rng.choice(["limit_buy", "limit_sell"]), "price": f"{100 + rng.randint(-5, 5)}.00",
            "time_in_force": rng.choice(["gtc", "gtc", "ioc"])}


def amend_body(rng: random.Random, order: dict) -> dict:
    """Fewer lots, a new price, or both, for an order as last told (it may have changed since)."""
    body: dict = {}
    quantity, filled = int(Decimal(order["quantity"])), int(Decimal(order["filled_quantity"]))
    if quantity - filled > 1 and rng.random() < 0.6:
        body["quantity"] = str(rng.randint(filled + 1, quantity - 1))
    if not body or (order["order_type"] != "market_sell" and rng.random() < 0.5):
        body["price"] = f"{100 + rng.randint(-5, 5)}.00"
    return body


@contextmanager
def running_clients(base_url: str, admin_token: str, market: Market, acknowledged: Acknowledged,
                    answers: Answers, seed: float, clients: int = 4) -> Iterator[None]:
    """Run the clients for the duration of the block; stop them and wait for their last answers."""
    rng = random.Random(seed)
    stop = threading.Event()
    threads = [threading.Thread(target=client_loop, args=(base_url, admin_token, market, rng.random(),
                                                          acknowledged, answers, stop))
               for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a client is stuck on a request"


def check_created_users(api: Api, created: list[User]) -> None:
    """Every user the admin was told was created can authenticate with its key."""
    for user in created:
        data = assert_envelope(api.get("/api/v1/balances/USD", user), 200, True)
        assert data["username"] == user.username
