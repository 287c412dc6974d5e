"""A funded market spread over the cluster's three shards and three books, and orders through two gateways.

The test knows the routing functions, so it lists an asset on each book actor and
funds users on each account shard, and can tell which node an order needs.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import httpx

from actors.config import book_actor_for, shard_for
from tests.chaos.checks import Acknowledged, contract_problem
from tests.cluster.conftest import BOOKS, SHARDS
from tests.e2e.api import Api, User, assert_envelope, unique_suffix

USERS_PER_SHARD = 2
USD_PER_USER = 100_000
LOTS_PER_USER = 1_000


@dataclass
class ClusterMarket:
    asset_ids: list[str]  # asset_ids[b] is on book actor b
    users: list[User]
    deposited: dict[str, Decimal]

    def users_on(self, shards: set[int]) -> list[User]:
        return [user for user in self.users if shard_for(user.username, SHARDS) in shards]

    def assets_on(self, books: set[int]) -> list[str]:
        return [asset_id for asset_id in self.asset_ids if book_actor_for(asset_id, BOOKS) in books]

    @classmethod
    def create(cls, apis: list[Api]) -> ClusterMarket:
        """List an asset on every book and fund users on every shard, alternating the gateways."""
        asset_ids = []
        for book in range(BOOKS):
            while book_actor_for(asset_id := f"N{unique_suffix().upper()}"[:10], BOOKS) != book:
                pass
            body = {"asset_id": asset_id, "name": f"Cluster {asset_id}", "tick_size": "0.01", "lot_size": "1"}
            assert_envelope(apis[book % 2].admin_post("/api/v1/admin/assets", body), 201, True)
            asset_ids.append(asset_id)
        users: list[User] = []
        wanted = Counter({shard: USERS_PER_SHARD for shard in range(SHARDS)})
        while +wanted:
            username = f"cl{unique_suffix()}"
            shard = shard_for(username, SHARDS)
            if wanted[shard] <= 0:
                continue
            wanted[shard] -= 1
            creator, funder = apis[len(users) % 2], apis[(len(users) + 1) % 2]
            data = assert_envelope(creator.admin_post("/api/v1/admin/users", {"username": username}), 201, True)
            user = User(username, data["api_key"])
            # Funded (and later trading) through the other gateway at once: its caches only cache.
            funder.deposit(user, "USD", USD_PER_USER)
            for asset_id in asset_ids:
                funder.deposit(user, asset_id, LOTS_PER_USER)
            users.append(user)
        deposited = {"USD": Decimal(USD_PER_USER * len(users)),
                     **{asset_id: Decimal(LOTS_PER_USER * len(users)) for asset_id in asset_ids}}
        return cls(asset_ids, users, deposited)


def order_body(rng: random.Random, asset_id: str) -> dict:
    body = {"asset_id": asset_id, "quantity": str(rng.randint(1, 5)), "client_order_id": f"cl{unique_suffix()}"}
    if rng.random() < 0.15:
        body["order_type"] = rng.choice(["market_buy", "market_sell"])
    else:
        body["order_type"] = rng.choice(["limit_buy", "limit_sell"])
        body["price"] = f"{100 + rng.randint(-5, 5)}.00"
    return body


@dataclass
class Load:
    """Clients placing and cancelling orders through both gateways until told to stop."""

    base_urls: list[str]
    users: list[User]
    asset_ids: list[str]
    acknowledged: Acknowledged
    problems: list[str] = field(default_factory=list)
    unanswered: list[tuple[User, dict]] = field(default_factory=list)
    # Successes per gateway: (when the request was sent, gateway index).
    successes: list[tuple[float, int]] = field(default_factory=list)
    halt: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, clients: int, seed: str) -> None:
        rng = random.Random(seed)
        self.threads = [threading.Thread(target=self._client, args=(rng.random(),), daemon=True)
                        for _ in range(clients)]
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.halt.set()
        for thread in self.threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in self.threads), "a client is stuck on a request"

    def successes_since(self, moment: float, gateway: int) -> int:
        with self.lock:
            return sum(1 for sent, index in self.successes if sent >= moment and index == gateway)

    def _client(self, seed: float) -> None:
        import time

        rng = random.Random(seed)
        clients = [httpx.Client(base_url=url, timeout=30.0) for url in self.base_urls]
        try:
            while not self.halt.is_set():
                gateway = rng.randrange(len(clients))
                user = rng.choice(self.users)
                sent = time.monotonic()
                if rng.random() < 0.2 and (mine := self.acknowledged.open_orders(user.username)):
                    try:
                        response = clients[gateway].delete(f"/api/v1/orders/{rng.choice(mine)['order_id']}",
                                                           headers=user.headers)
                    except httpx.TransportError:
                        continue  # either outcome keeps the order in its told state or a later one
                else:
                    body = order_body(rng, rng.choice(self.asset_ids))
                    try:
                        response = clients[gateway].post("/api/v1/orders", json=body, headers=user.headers)
                    except httpx.TransportError:
                        with self.lock:
                            self.unanswered.append((user, body))
                        continue
                    if response.status_code == 503:
                        with self.lock:
                            self.unanswered.append((user, body))
                problem = contract_problem(response)
                with self.lock:
                    if problem is not None:
                        self.problems.append(problem)
                    if response.status_code in (200, 201):
                        self.successes.append((sent, gateway))
                if response.status_code in (200, 201):
                    self.acknowledged.record(response.json()["data"])
        finally:
            for client in clients:
                client.close()
