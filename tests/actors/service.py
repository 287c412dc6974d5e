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
from actors.messages import AdjustBalance, OrderOutcome, OrderView, PlaceOrder
from actors.remote import kill_actors
from actors.retry import call_with_retry
from engine import AssetSpec
from engine.numbers import MONEY_UNITS_PER_USD as USD_UNIT
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
        assert await client.create_asset(AssetSpec.create(asset_id, "0.01", "1")) is None
    for username in users:
        assert (await client.create_user(username, f"hash-{username}", 1))[0] is None
        assert (await client.adjust_balance(AdjustBalance("deposit", username, "USD", usd * USD_UNIT))).reason is None
        for asset_id in assets if lots else ():
            assert (await client.adjust_balance(AdjustBalance("deposit", username, asset_id, lots))).reason is None


def order_request(username, asset_id, order_type, quantity, price=None, time_in_force=None,
                  client_order_id=None, post_only=False) -> PlaceOrder:
    if time_in_force is None:
        time_in_force = "ioc" if order_type.startswith("market") else "gtc"
    return PlaceOrder(username, asset_id, order_type, time_in_force, post_only, quantity, price, client_order_id,
                      None)


@dataclass
class Acknowledged:
    """What clients were told: orders answered with success, by order id."""

    orders: dict[int, OrderView] = field(default_factory=dict)

    def record(self, result: OrderOutcome) -> None:
        if result.ok:
            self.orders[result.order.order_id] = result.order

    async def check_against(self, client: ServiceClient) -> list[str]:
        """Return how the service's orders fall short of what was acknowledged."""
        problems = []
        for order_id, acked in self.orders.items():
            now = await client.get_order(acked.username, order_id)
            if now is None:
                problems.append(f"acknowledged order {order_id} is gone")
                continue
            if _ORDER_OF_STATUS[now.status] < _ORDER_OF_STATUS[acked.status] or (
                    _ORDER_OF_STATUS[acked.status] == 3 and now.status != acked.status):
                problems.append(f"order {order_id} was acknowledged {acked.status}, is now {now.status}")
            if now.filled_quantity < acked.filled_quantity:
                problems.append(f"order {order_id} was acknowledged with {acked.filled_quantity} filled, "
                                f"now {now.filled_quantity}")
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
