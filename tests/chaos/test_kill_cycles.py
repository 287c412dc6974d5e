"""SIGKILL of the whole service at random moments while clients trade over HTTP.

Each cycle: clients place and cancel orders on several threads; once a random
number of answers has come back, the whole process group is killed with
SIGKILL; the service is started again on the same data directory and checked:
every order acknowledged with a 2xx exists in its acknowledged state or a later
one, each asset adds up to deposits minus withdrawals, every user's locked
balance equals what its open orders reserve, the book equals the open orders,
and no order id or trade id appears twice.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from decimal import Decimal

import httpx

from tests.e2e.api import D, Api, eventually

CYCLES = 10
CLIENTS = 4
LATER = {"pending": 0, "confirmed": 1, "processing": 2, "completed": 3, "cancelled": 3, "failed": 3}


class Acknowledged:
    """Orders as clients were last told they are, and a way to wait for so many answers."""

    def __init__(self) -> None:
        self.orders: dict[str, dict] = {}
        self.answers = 0
        self.changed = threading.Condition()

    def record(self, order: dict) -> None:
        with self.changed:
            self.orders[order["order_id"]] = order
            self.answers += 1
            self.changed.notify_all()

    def wait_for(self, answers: int, stop: threading.Event) -> None:
        with self.changed:
            self.changed.wait_for(lambda: self.answers >= answers or stop.is_set(), timeout=120)


def _client_loop(base_url: str, users, asset_id: str, seed: int, acknowledged: Acknowledged,
                 stop: threading.Event) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        while not stop.is_set():
            user = rng.choice(users)
            roll = rng.random()
            try:
                if roll < 0.2:
                    mine = [o for o in list(acknowledged.orders.values())
                            if o["username"] == user.username and o["status"] in ("confirmed", "processing")]
                    if not mine:
                        continue
                    response = client.delete(f"/api/v1/orders/{rng.choice(mine)['order_id']}", headers=user.headers)
                else:
                    body = {"asset_id": asset_id, "quantity": str(rng.randint(1, 5))}
                    if roll < 0.3:
                        body["order_type"] = rng.choice(["market_buy", "market_sell"])
                    else:
                        body["order_type"] = rng.choice(["limit_buy", "limit_sell"])
                        body["price"] = f"{100 + rng.randint(-5, 5)}.00"
                    response = client.post("/api/v1/orders", json=body, headers=user.headers)
            except httpx.TransportError:
                return  # the service is gone: whatever was in flight was never acknowledged
            if response.status_code in (200, 201):
                acknowledged.record(response.json()["data"])


def _all_orders(api: Api, user) -> list[dict]:
    orders, offset = [], 0
    while True:
        page = api.orders(user, limit=100, offset=offset)
        orders.extend(page["orders"])
        if not page["has_more"]:
            return orders
        offset += 100


def _check(api: Api, users, asset_id: str, acknowledged: Acknowledged, deposited: dict) -> None:
    by_user = {user.username: user for user in users}
    for order_id, told in acknowledged.orders.items():
        now = api.order(by_user[told["username"]], order_id)
        assert LATER[now["status"]] >= LATER[told["status"]], (order_id, told["status"], now["status"])
        if LATER[told["status"]] == 3:
            assert now["status"] == told["status"], (order_id, told["status"], now["status"])
        assert D(now["filled_quantity"]) >= D(told["filled_quantity"]), order_id

    for held_asset, total in deposited.items():
        eventually(lambda held_asset=held_asset: api.total_holdings(users, held_asset),
                   lambda found, total=total: found == total, what=f"{held_asset} adds up to {total}")

    resting: Counter = Counter()
    all_ids: list[str] = []
    for user in users:
        orders = _all_orders(api, user)
        all_ids.extend(o["order_id"] for o in orders)
        open_orders = [o for o in orders if o["status"] in ("confirmed", "processing")]
        assert not [o for o in orders if o["status"] == "pending"], "an order is still pending after recovery"
        reserved_usd = sum(D(o["price"]) * D(o["remaining_quantity"]) for o in open_orders
                           if o["order_type"] == "limit_buy")
        reserved_asset = sum(D(o["remaining_quantity"]) for o in open_orders if o["order_type"] == "limit_sell")
        assert api.amounts(user, "USD")[1] == reserved_usd, user.username
        assert api.amounts(user, asset_id)[1] == reserved_asset, user.username
        for o in open_orders:
            side = "bids" if o["order_type"] == "limit_buy" else "asks"
            resting[(side, D(o["price"]))] += D(o["remaining_quantity"])
    book = api.book(asset_id, depth=1000)
    on_book = Counter({(side, D(level["price"])): D(level["quantity"]) for side in ("bids", "asks")
                       for level in book[side]})
    assert on_book == resting
    assert len(all_ids) == len(set(all_ids)), "an order id appears twice"
    trade_ids = [trade["trade_id"] for trade in api.trades(asset_id, limit=1000)]
    assert len(trade_ids) == len(set(trade_ids)), "a trade id appears twice"


def test_kill_9_of_the_whole_service_at_random_moments_loses_nothing_acknowledged(service_factory):
    service = service_factory()
    service.start()
    api = Api(service.base_url, service.admin_token)
    asset_id = api.new_asset()
    users = [api.new_user(usd="100000", assets={asset_id: "1000"}, prefix="chaos") for _ in range(6)]
    deposited = {"USD": Decimal(600_000), asset_id: Decimal(6_000)}
    acknowledged = Acknowledged()
    rng = random.Random(2026)
    try:
        for cycle in range(CYCLES):
            stop = threading.Event()
            target = acknowledged.answers + rng.randint(5, 60)
            clients = [threading.Thread(target=_client_loop,
                                        args=(service.base_url, users, asset_id, rng.random(), acknowledged, stop))
                       for _ in range(CLIENTS)]
            for client in clients:
                client.start()
            acknowledged.wait_for(target, stop)
            service.kill_group()
            stop.set()
            for client in clients:
                client.join(timeout=60)
            service.start()
            _check(api, users, asset_id, acknowledged, deposited)
        assert acknowledged.answers >= CYCLES * 5
    finally:
        api.close()
