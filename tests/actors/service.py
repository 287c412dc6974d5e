"""A service under test: its actors over a temporary data directory, and the client's view."""

from __future__ import annotations

import asyncio
import itertools
import os
import select
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path


from actors.client import ServiceClient
from actors.config import ServiceConfig
from actors.remote import kill_actors
from actors.senders import call_with_retry
from engine import AssetSpec

USD_UNIT = 10**8
_ORDER_OF_STATUS = {"pending": 0, "confirmed": 1, "processing": 2, "completed": 3, "cancelled": 3, "failed": 3}


class RunningService:
    """Start, kill and restart one service's actors on one data directory."""

    def __init__(self, data_dir: Path, **config) -> None:
        self.config = ServiceConfig(data_dir=data_dir, namespace=f"test-{uuid.uuid4().hex[:8]}",
                                    shard_count=config.pop("shard_count", 2),
                                    book_actor_count=config.pop("book_actor_count", 2), **config)
        self.client: ServiceClient | None = None

    def reconfigure(self, **changes) -> None:
        """Change the configuration for the next start (same data directory and namespace)."""
        self.config = replace(self.config, **changes)

    async def start(self) -> ServiceClient:
        self.client = ServiceClient(self.config)
        await self.client.wait_ready()
        return self.client

    async def stop(self) -> None:
        """Kill every actor for good and wait until each process is gone (its journal lock freed)."""
        pids = await self.pids()
        kill_actors(self.config)
        await asyncio.to_thread(wait_for_exit, pids.values())

    async def restart(self) -> ServiceClient:
        await self.stop()
        return await self.start()

    async def pids(self) -> dict[str, int]:
        handles = {"registry": self.client.registry,
                   **{f"shard-{i}": h for i, h in enumerate(self.client.shards)},
                   **{f"book-{i}": h for i, h in enumerate(self.client.books)}}
        return {name: await call_with_retry(handle.pid.remote, lambda: None) for name, handle in handles.items()}


def wait_for_exit(pids, timeout: float = 60.0) -> None:
    """Block until every process has exited (a pidfd turns readable when its process is gone)."""
    for pid in pids:
        try:
            descriptor = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            readable, _, _ = select.select([descriptor], [], [], timeout)
            assert readable, f"process {pid} did not exit"
        finally:
            os.close(descriptor)


async def setup_market(client: ServiceClient, users: list[str], assets: list[str], usd: int = 100_000,
                       lots: int = 10_000) -> None:
    """Create assets (tick 0.01, lot 1) and users, and fund every user in every asset."""
    for asset_id in assets:
        assert await client.create_asset(AssetSpec.create(asset_id, "0.01", "1").to_record()) is None
    for username in users:
        assert await client.create_user(username, f"hash-{username}", 1) is None
        assert (await client.adjust_balance("deposit", username, "USD", usd * USD_UNIT))[0] == "ok"
        for asset_id in assets if lots else ():
            assert (await client.adjust_balance("deposit", username, asset_id, lots))[0] == "ok"


def order_request(username, asset_id, order_type, quantity, price=None, time_in_force=None,
                  client_order_id=None, post_only=False) -> tuple:
    if time_in_force is None:
        time_in_force = "ioc" if order_type.startswith("market") else "gtc"
    return (username, asset_id, order_type, time_in_force, post_only, quantity, price, client_order_id, None)


@dataclass
class Acknowledged:
    """What clients were told: order records answered with success, by order id."""

    orders: dict[int, list] = field(default_factory=dict)

    def record(self, result: tuple) -> None:
        if result[0] == "ok" and result[1] is not None:
            self.orders[result[1][0]] = result[1]
        elif len(result) == 3 and result[0] == "ok":
            self.orders[result[2][0]] = result[2]

    async def check_against(self, client: ServiceClient) -> list[str]:
        """Return how the service's orders fall short of what was acknowledged."""
        problems = []
        for order_id, acked in self.orders.items():
            now = await client.get_order(acked[1], order_id)
            if now is None:
                problems.append(f"acknowledged order {order_id} is gone")
                continue
            acked_status, status = acked[12], now[12]
            if _ORDER_OF_STATUS[status] < _ORDER_OF_STATUS[acked_status] or (
                    _ORDER_OF_STATUS[acked_status] == 3 and status != acked_status):
                problems.append(f"order {order_id} was acknowledged {acked_status}, is now {status}")
            if now[14] < acked[14]:
                problems.append(f"order {order_id} was acknowledged with {acked[14]} filled, now {now[14]}")
        return problems


def random_requests(rng, users, assets, count, id_source=itertools.count()) -> list[tuple]:
    """Limit and market orders around a mid of 100.00 that cross often."""
    requests = []
    for _ in range(count):
        username = rng.choice(users)
        asset_id = rng.choice(assets)
        roll = rng.random()
        quantity = rng.randint(1, 20)
        if roll < 0.1:
            requests.append(order_request(username, asset_id, rng.choice(["market_buy", "market_sell"]), quantity))
        else:
            side = rng.choice(["limit_buy", "limit_sell"])
            price = 10_000 + rng.randint(-30, 30)
            tif = rng.choice(["gtc", "gtc", "gtc", "ioc", "fok"])
            requests.append(order_request(username, asset_id, side, quantity, price, tif,
                                          client_order_id=f"c{next(id_source)}"))
    return requests


def run(coroutine):
    return asyncio.run(coroutine)
