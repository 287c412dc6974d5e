"""What the chaos tests check over HTTP once a fault is over and the clients have stopped.

- every order acknowledged with a 2xx exists in the state it was reported in, or a later one;
- for each asset the sum over the accounts equals deposits minus withdrawals;
- each account's locked amount equals what its open orders and waiting stops reserve;
- the book of each asset holds exactly the open orders;
- no order id and no trade id appears twice, and no order is left pending but waiting stops.

A maker's account hears of a trade after its taker's answer, so the checks
that span accounts and books wait (with a deadline) for settlements in flight.
And `contract_problem` says whether one answer keeps API.md under faults.
"""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal

import httpx

from tests.e2e.api import D, Api, User, assert_envelope, assert_error, eventually

LATER = {"pending": 0, "confirmed": 1, "processing": 2, "completed": 3, "cancelled": 3, "failed": 3}
OPEN = ("confirmed", "processing")
# Settlements a restarted book hands out again may take a few of its resend periods.
SETTLED_DEADLINE = 45.0


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

    def open_orders(self, username: str) -> list[dict]:
        """The user's orders last told open: on a book, or a stop waiting."""
        with self.changed:
            return [o for o in self.orders.values() if o["username"] == username and (
                o["status"] in OPEN or waiting(o))]

    def wait_for(self, answers: int, stop: threading.Event | None = None, timeout: float = 120.0) -> bool:
        """Wait until so many answers came (or `stop` is set); return whether they did."""
        with self.changed:
            self.changed.wait_for(lambda: self.answers >= answers or (stop is not None and stop.is_set()),
                                  timeout=timeout)
            return self.answers >= answers


def waiting(order: dict) -> bool:
    """A stop order waiting for its trigger: pending, and rightly so."""
    return order["status"] == "pending" and order.get("stop_price") is not None and order["triggered_at"] is None


def contract_problem(response: httpx.Response) -> str | None:
    """Say how an answer breaks API.md during a fault, or None if it keeps it.

    A 2xx carries the envelope; an error is in the envelope with a code, and no
    5xx but 503 (a part of the service restarting) is ever acceptable.
    """
    request = f"{response.request.method} {response.request.url.path}"
    try:
        if 200 <= response.status_code < 300:
            assert_envelope(response, response.status_code, True)
        else:
            assert_error(response, response.status_code)
    except (AssertionError, ValueError) as broken:
        return f"{request} -> {response.status_code}: not in the envelope ({broken}): {response.text[:300]}"
    if response.status_code >= 500 and response.status_code != 503:
        return f"{request} -> {response.status_code}: {response.text[:300]}"
    return None


def all_orders(api: Api, user: User) -> list[dict]:
    """Every order of a user, page by page (call it while nobody places orders)."""
    orders, offset = [], 0
    while True:
        page = api.orders(user, limit=100, offset=offset)
        orders.extend(page["orders"])
        if not page["has_more"]:
            return orders
        offset += 100


def check_service(api: Api, users: list[User], asset_ids: list[str], acknowledged: Acknowledged,
                  deposited: dict[str, Decimal], fetch_each: bool = False) -> None:
    """Check the invariants above; `fetch_each` reads every acknowledged order by its own GET."""
    by_user = {user.username: user for user in users}
    if fetch_each:
        now_by_id = {order_id: api.order(by_user[told["username"]], order_id)
                     for order_id, told in acknowledged.orders.items()}
    else:
        now_by_id = {order["order_id"]: order for user in users for order in all_orders(api, user)}
    for order_id, told in acknowledged.orders.items():
        now = now_by_id.get(order_id)
        assert now is not None, f"acknowledged order {order_id} ({told['status']}) is gone"
        assert LATER[now["status"]] >= LATER[told["status"]], (order_id, told["status"], now["status"])
        if LATER[told["status"]] == 3:
            assert now["status"] == told["status"], (order_id, told["status"], now["status"])
        assert D(now["filled_quantity"]) >= D(told["filled_quantity"]), order_id

    for held_asset, total in deposited.items():
        eventually(lambda held_asset=held_asset: api.total_holdings(users, held_asset),
                   lambda found, total=total: found == total, deadline=SETTLED_DEADLINE,
                   what=f"{held_asset} adds up to {total}")
    eventually(lambda: settled_problems(api, users, asset_ids), lambda problems: not problems,
               deadline=SETTLED_DEADLINE, what="holds, books and ids agree with the open orders")


def settled_problems(api: Api, users: list[User], asset_ids: list[str]) -> list[str]:
    """List what breaks the invariants between accounts and books right now."""
    problems: list[str] = []
    resting: Counter = Counter()
    all_ids: list[str] = []
    for user in users:
        orders = all_orders(api, user)
        all_ids.extend(o["order_id"] for o in orders)
        problems.extend(f"order {o['order_id']} is still pending" for o in orders
                        if o["status"] == "pending" and not waiting(o))
        open_orders = [o for o in orders if o["status"] in OPEN]
        holding = open_orders + [o for o in orders if waiting(o)]
        reserved_usd = sum((D(o["price"]) * D(o["remaining_quantity"]) for o in holding
                            if o["order_type"] == "limit_buy"), Decimal(0))
        locked_usd = api.amounts(user, "USD")[1]
        if locked_usd != reserved_usd:
            problems.append(f"{user.username} has {locked_usd} USD locked, its open buys reserve {reserved_usd}")
        for asset_id in asset_ids:
            reserved = sum((D(o["remaining_quantity"]) for o in holding
                            if o["order_type"] in ("limit_sell", "market_sell") and o["asset_id"] == asset_id),
                           Decimal(0))
            locked = api.amounts(user, asset_id)[1]
            if locked != reserved:
                problems.append(f"{user.username} has {locked} {asset_id} locked, its open sells reserve {reserved}")
        for o in open_orders:
            side = "bids" if o["order_type"] == "limit_buy" else "asks"
            resting[(o["asset_id"], side, D(o["price"]))] += D(o["remaining_quantity"])
    on_book: Counter = Counter()
    for asset_id in asset_ids:
        book = api.book(asset_id, depth=1000)
        for side in ("bids", "asks"):
            for level in book[side]:
                on_book[(asset_id, side, D(level["price"]))] = D(level["quantity"])
        trade_ids = [trade["trade_id"] for trade in api.trades(asset_id, limit=1000)]
        if len(trade_ids) != len(set(trade_ids)):
            problems.append(f"a trade id of {asset_id} appears twice")
    if on_book != resting:
        problems.append(f"books {dict(on_book - resting)} more and {dict(resting - on_book)} less "
                        f"than the open orders")
    if len(all_ids) != len(set(all_ids)):
        problems.append("an order id appears twice")
    return problems
