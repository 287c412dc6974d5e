"""Restarts: after SIGTERM, or SIGKILL of the whole process group, every answer is the same.

Each test runs its own service on its own data directory: it places orders
that rest, trade, cancel and fail, waits until every maker has settled, reads
every order, balance, transaction, portfolio, book and tape over HTTP, stops
the service one way or the other, starts it again with the same environment
and reads everything again. While the new run recovers, an order route must
answer 503 `NOT_READY` (or nothing at all), never serve before readiness.
"""

from __future__ import annotations

import copy
import signal
from dataclasses import dataclass
from decimal import Decimal

import httpx

from tests.e2e.api import D, Api, User, assert_envelope, assert_error, eventually
from tests.e2e.process import processes_with_environment

# A clean stop on SIGTERM exits 0, or dies of the signal it was sent (what shells and supervisors expect).
CLEAN_EXIT_CODES = {0, -signal.SIGTERM}


@dataclass
class History:
    users: dict[str, User]
    assets: list[str]
    late_sells: tuple  # two resting sells at one price: (alice's earlier, bob's later)


def _build_history(api: Api) -> History:
    asset_id = api.new_asset(tick_size="0.01", lot_size="1")
    other_asset = api.new_asset(tick_size="0.5", lot_size="0.1")
    alice = api.new_user(usd="10000", assets={asset_id: 100, other_asset: "5"}, prefix="alice")
    bob = api.new_user(usd="10000", assets={asset_id: 100}, prefix="bob")
    carol = api.new_user(usd="1000", prefix="carol")
    first = api.place(alice, asset_id, "limit_sell", 5, "101", client_order_id="alice-1")
    second = api.place(alice, asset_id, "limit_sell", 5, "102")
    assert api.place(bob, asset_id, "limit_buy", 7, "102")["status"] == "completed"
    bid = api.place(bob, asset_id, "limit_buy", 3, "99")
    doomed = api.place(bob, asset_id, "limit_buy", 2, "98")
    assert_envelope(api.cancel(bob, doomed["order_id"]), 200, True)
    assert api.place(alice, asset_id, "limit_sell", 1, "99", post_only=True)["status"] == "failed"
    assert api.place(carol, asset_id, "market_buy", 10)["reason"] == "no_liquidity"
    assert api.place(alice, asset_id, "market_sell", 2)["status"] == "completed"
    assert api.place(bob, asset_id, "limit_buy", 1, "50", time_in_force="ioc")["reason"] == "ioc_expired"
    api.place(alice, other_asset, "limit_sell", "1.5", "10.5")
    api.place(bob, other_asset, "limit_buy", "0.3", "9")
    early = api.place(alice, asset_id, "limit_sell", 2, "110")
    late = api.place(bob, asset_id, "limit_sell", 2, "110")
    api.withdraw(alice, "USD", "100")
    # Makers learn of their fills after the takers' answers; wait until they all have.
    api.settled_order(alice, first["order_id"], 5)
    api.settled_order(alice, second["order_id"], 5)
    api.settled_order(bob, bid["order_id"], 2)
    return History({"alice": alice, "bob": bob, "carol": carol}, [asset_id, other_asset], (early, late))


def _without(data: dict, *keys: str) -> dict:
    trimmed = copy.deepcopy(data)
    for key in keys:
        trimmed.pop(key, None)
    return trimmed


def _state(api: Api, history: History) -> dict:
    """Everything the service answers about these users and assets, without envelope times."""
    state: dict = {}
    for name, user in history.users.items():
        listing = api.orders(user, limit=100)
        state[f"{name}/orders"] = listing
        for order in listing["orders"]:
            state[f"{name}/order/{order['order_id']}"] = api.order(user, order["order_id"])
        state[f"{name}/balances"] = api.balances(user, limit=100)
        for asset_id in ["USD", *history.assets]:
            state[f"{name}/balance/{asset_id}"] = api.balance(user, asset_id)
        for asset_id in history.assets:
            state[f"{name}/transactions/{asset_id}"] = api.transactions(user, asset_id, limit=100)
        # The portfolio's own `last_updated` may be the time of the answer.
        state[f"{name}/portfolio"] = _without(api.portfolio(user), "last_updated")
    for asset_id in history.assets:
        state[f"asset/{asset_id}"] = api.asset(asset_id)
        state[f"book/{asset_id}"] = api.book(asset_id, depth=1000)
        state[f"trades/{asset_id}"] = api.trades(asset_id, limit=1000)
    return state


def _probe_not_ready(service, user: User):
    """Check, while the service recovers, that it is live and an order route answers 503 NOT_READY."""
    client = httpx.Client(base_url=service.base_url, timeout=10.0)

    def probe() -> None:
        assert client.get("/health/live").status_code == 200
        response = client.get("/api/v1/orders", headers=user.headers)
        if response.status_code == 503:
            assert_error(response, 503, "NOT_READY")
            return
        ready = client.get("/health/ready")
        assert ready.status_code == 200, (
            f"GET /api/v1/orders answered {response.status_code} {response.text} while /health/ready "
            f"still answered {ready.status_code}")

    return probe, client


def _assert_same_after_restart(api: Api, history: History, before: dict) -> None:
    after = _state(api, history)
    differences = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    assert not differences, "changed by the restart: " + "; ".join(
        f"{key}: {before.get(key)!r} -> {after.get(key)!r}" for key in differences[:5])


def _assert_service_continues(api: Api, history: History) -> None:
    """Trade on the recovered books: time priority and conservation survived."""
    users = list(history.users.values())
    carol = history.users["carol"]
    asset_id = history.assets[0]
    early, late = history.late_sells
    taker = api.place(carol, asset_id, "limit_buy", 2, "110")
    assert taker["status"] == "completed" and D(taker["total_amount"]) == 220
    assert api.settled_order(history.users["alice"], early["order_id"], 2)["status"] == "completed"
    assert api.order(history.users["bob"], late["order_id"])["status"] == "confirmed"
    expected = {"USD": Decimal(21000 - 100), asset_id: Decimal(200), history.assets[1]: Decimal(5)}
    for held_asset, total in expected.items():
        eventually(lambda held_asset=held_asset: api.total_holdings(users, held_asset),
                   lambda found, total=total: found == total, what=f"{held_asset} adds up to {total}")


def test_restart_after_sigterm_answers_every_order_and_balance_the_same(service_factory):
    service = service_factory()
    service.start()
    api = Api(service.base_url, service.admin_token)
    try:
        history = _build_history(api)
        before = _state(api, history)
        exit_code = service.terminate()
        # A clean stop takes its Ray processes with it.
        left_behind = processes_with_environment(service.marker)
        probe, probe_client = _probe_not_ready(service, history.users["alice"])
        with probe_client:
            service.start(probe=probe)
        _assert_same_after_restart(api, history, before)
        _assert_service_continues(api, history)
        # Checked last so that the answers above are checked whatever the exit status.
        assert left_behind == [], f"processes still running after the service exited: {left_behind}"
        assert exit_code in CLEAN_EXIT_CODES, f"SIGTERM ended the service with exit status {exit_code}"
    finally:
        api.close()


def test_restart_after_sigkill_of_the_process_group_answers_every_order_and_balance_the_same(service_factory):
    service = service_factory()
    service.start()
    api = Api(service.base_url, service.admin_token)
    try:
        history = _build_history(api)
        before = _state(api, history)
        service.kill_group()
        probe, probe_client = _probe_not_ready(service, history.users["alice"])
        with probe_client:
            service.start(probe=probe)
        _assert_same_after_restart(api, history, before)
        _assert_service_continues(api, history)
    finally:
        api.close()
