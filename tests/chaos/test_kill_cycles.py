"""SIGKILL of the whole service at random moments while clients trade over HTTP.

Each cycle: clients place, amend and cancel orders and stop orders on several
threads; once a random
number of answers has come back, the whole process group is killed with
SIGKILL; the service is started again on the same data directory and checked:
every order acknowledged with a 2xx exists in its acknowledged state or a later
one, each asset adds up to deposits minus withdrawals, every user's locked
balance equals what its open orders and waiting stops reserve, the book equals
the open orders, no order but a waiting stop is left pending,
and no order id or trade id appears twice.
"""

from __future__ import annotations

import random
import threading
from decimal import Decimal

import httpx

from tests.chaos.checks import Acknowledged, check_service
from tests.chaos.load import amend_body, stop_fields
from tests.e2e.api import Api

CYCLES = 10
CLIENTS = 4


def _client_loop(base_url: str, users, asset_id: str, seed: int, acknowledged: Acknowledged,
                 stop: threading.Event) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        while not stop.is_set():
            user = rng.choice(users)
            roll = rng.random()
            try:
                if roll < 0.2:
                    mine = acknowledged.open_orders(user.username)
                    if not mine:
                        continue
                    order = rng.choice(mine)
                    if roll < 0.14:
                        response = client.delete(f"/api/v1/orders/{order['order_id']}", headers=user.headers)
                    else:
                        response = client.patch(f"/api/v1/orders/{order['order_id']}", headers=user.headers,
                                                json=amend_body(rng, order))
                else:
                    body = {"asset_id": asset_id, "quantity": str(rng.randint(1, 5))}
                    if roll < 0.3:
                        body["order_type"] = rng.choice(["market_buy", "market_sell"])
                    elif roll < 0.36:
                        body.update(stop_fields(rng))
                    else:
                        body["order_type"] = rng.choice(["limit_buy", "limit_sell"])
                        body["price"] = f"{100 + rng.randint(-5, 5)}.00"
                    response = client.post("/api/v1/orders", json=body, headers=user.headers)
            except httpx.TransportError:
                return  # the service is gone: whatever was in flight was never acknowledged
            if response.status_code in (200, 201):
                acknowledged.record(response.json()["data"])


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
            check_service(api, users, [asset_id], acknowledged, deposited, fetch_each=True)
        assert acknowledged.answers >= CYCLES * 5
    finally:
        api.close()
