"""A thin HTTP client for the contract of API.md, and the checks every answer shares.

Helpers create users and assets with unique names, so that tests sharing one
service never see each other's accounts or books. Decimals are compared as
`Decimal`, after checking that the service wrote them as JSON strings.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
ENVELOPE_KEYS = {"success", "message", "data", "timestamp"}
ORDER_FIELDS = {
    "order_id", "client_order_id", "username", "asset_id", "order_type", "time_in_force", "post_only",
    "status", "quantity", "price", "filled_quantity", "remaining_quantity", "average_price",
    "total_amount", "reason", "description", "created_at", "updated_at",
    "stop_price", "stop_kind", "triggered_at",
}
ORDER_DECIMALS = ("quantity", "price", "filled_quantity", "remaining_quantity", "total_amount")
# How long a maker's account may take to show a trade its taker was already told about.
SETTLEMENT_DEADLINE = 15.0
_counter = itertools.count(1)


def unique_suffix() -> str:
    return f"{next(_counter):x}{uuid.uuid4().hex[:6]}"


def D(value: Any) -> Decimal:
    """Read a decimal the service wrote; it must be a JSON string."""
    assert isinstance(value, str), f"decimal {value!r} is not written as a JSON string"
    return Decimal(value)


def parse_time(value: str) -> datetime:
    """Parse an ISO-8601 timestamp and check that it is in UTC."""
    assert isinstance(value, str), value
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert moment.utcoffset() == timedelta(0), f"timestamp {value!r} is not UTC"
    return moment


def eventually(fetch: Callable[[], T], condition: Callable[[T], bool], deadline: float = SETTLEMENT_DEADLINE,
               what: str = "condition") -> T:
    """Fetch until `condition` holds on the result; fail after `deadline` seconds.

    Only for what API.md leaves asynchronous: a maker's account (in another
    shard than the taker's) learns of a trade after the taker's answer.
    """
    give_up = time.monotonic() + deadline
    while True:
        value = fetch()
        if condition(value):
            return value
        if time.monotonic() > give_up:
            raise AssertionError(f"{what} not reached within {deadline}s; last value: {value!r}")


def assert_envelope(response: httpx.Response, status: int, success: bool) -> Any:
    """Check the status and the envelope shape; return its `data`."""
    assert response.status_code == status, f"{response.request.method} {response.request.url}: " \
                                           f"expected {status}, got {response.status_code}: {response.text}"
    body = response.json()
    assert isinstance(body, dict), body
    assert ENVELOPE_KEYS <= body.keys(), body
    assert body["success"] is success, body
    assert isinstance(body["message"], str), body
    parse_time(body["timestamp"])
    if success:
        assert "error" not in body or body["error"] is None, body
    return body["data"]


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    """Check an error envelope with a real status (and the code, if given); return the body."""
    assert_envelope(response, status, success=False)
    body = response.json()
    error = body.get("error")
    assert isinstance(error, dict) and {"code", "details"} <= error.keys(), body
    assert isinstance(error["code"], str) and error["code"], body
    if code is not None:
        assert error["code"] == code, f"expected {code}, got {body}"
    assert "Traceback" not in response.text
    return body


def check_order(order: dict) -> dict:
    """Check the fields and the arithmetic API.md promises for any OrderData."""
    assert ORDER_FIELDS <= order.keys(), sorted(ORDER_FIELDS - order.keys())
    for name in ORDER_DECIMALS:
        D(order[name])
    assert order["status"] in {"confirmed", "processing", "completed", "cancelled", "failed"} or (
        order["status"] == "pending" and order["stop_price"] is not None and order["triggered_at"] is None), order
    assert (order["stop_price"] is None) == (order["stop_kind"] is None), order
    if order["stop_price"] is None:
        assert order["triggered_at"] is None, order
    quantity, filled = D(order["quantity"]), D(order["filled_quantity"])
    assert D(order["remaining_quantity"]) == quantity - filled, order
    assert Decimal(0) <= filled <= quantity, order
    if filled == 0:
        assert order["average_price"] is None, order
        assert D(order["total_amount"]) == 0, order
    else:
        average = D(order["average_price"])
        exact = D(order["total_amount"]) / filled
        assert abs(average - exact) <= Decimal("1e-8") * max(1, abs(exact)), order
    if order["order_type"].startswith("market"):
        expected_price = Decimal(0) if filled == 0 else D(order["average_price"])
        assert D(order["price"]) == expected_price, order
    if order["status"] == "completed":
        assert filled == quantity, order
    if order["status"] == "confirmed":
        assert filled == 0, order
    if order["status"] == "processing":
        assert 0 < filled < quantity, order
    parse_time(order["created_at"])
    parse_time(order["updated_at"])
    return order


@dataclass(frozen=True)
class User:
    username: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


class Api:
    """Requests against one running service, as the admin or as a user."""

    def __init__(self, base_url: str, admin_token: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60.0)
        self.admin_token = admin_token

    def close(self) -> None:
        self.http.close()

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    # ---- raw -----------------------------------------------------------

    def get(self, path: str, user: User | None = None, **kwargs) -> httpx.Response:
        return self.http.get(path, headers=user.headers if user else None, **kwargs)

    def post(self, path: str, user: User | None = None, **kwargs) -> httpx.Response:
        return self.http.post(path, headers=user.headers if user else None, **kwargs)

    def delete(self, path: str, user: User | None = None, **kwargs) -> httpx.Response:
        return self.http.delete(path, headers=user.headers if user else None, **kwargs)

    def patch(self, path: str, user: User | None = None, **kwargs) -> httpx.Response:
        return self.http.patch(path, headers=user.headers if user else None, **kwargs)

    def admin_post(self, path: str, body: dict) -> httpx.Response:
        return self.http.post(path, json=body, headers=self.admin_headers)

    # ---- admin ---------------------------------------------------------

    def new_user(self, usd: str | int | None = None, assets: dict[str, str | int] | None = None,
                 prefix: str = "u") -> User:
        """Create a user with a unique name and deposit what is given."""
        username = f"{prefix}{unique_suffix()}"
        data = assert_envelope(self.admin_post("/api/v1/admin/users", {"username": username}), 201, True)
        assert data["username"] == username
        user = User(username, data["api_key"])
        if usd is not None:
            self.deposit(user, "USD", usd)
        for asset_id, amount in (assets or {}).items():
            self.deposit(user, asset_id, amount)
        return user

    def new_asset(self, tick_size: str = "0.01", lot_size: str = "1", name: str | None = None) -> str:
        """List an asset with a unique id; return the id."""
        asset_id = f"T{unique_suffix().upper()}"[:10]
        body = {"asset_id": asset_id, "name": name or f"Test asset {asset_id}",
                "tick_size": tick_size, "lot_size": lot_size}
        assert_envelope(self.admin_post("/api/v1/admin/assets", body), 201, True)
        return asset_id

    def deposit(self, user: User, asset_id: str, amount: str | int) -> dict:
        body = {"username": user.username, "asset_id": asset_id, "amount": str(amount)}
        return assert_envelope(self.admin_post("/api/v1/admin/deposits", body), 201, True)

    def withdraw(self, user: User, asset_id: str, amount: str | int) -> dict:
        body = {"username": user.username, "asset_id": asset_id, "amount": str(amount)}
        return assert_envelope(self.admin_post("/api/v1/admin/withdrawals", body), 201, True)

    # ---- orders --------------------------------------------------------

    def submit(self, user: User, asset_id: str, order_type: str, quantity: str | int,
               price: str | int | None = None, **fields) -> httpx.Response:
        body = {"asset_id": asset_id, "order_type": order_type, "quantity": str(quantity), **fields}
        if price is not None:
            body["price"] = str(price)
        return self.post("/api/v1/orders", user, json=body)

    def place(self, user: User, asset_id: str, order_type: str, quantity: str | int,
              price: str | int | None = None, **fields) -> dict:
        """Place an order that must be accepted (201); return its checked OrderData."""
        order = assert_envelope(self.submit(user, asset_id, order_type, quantity, price, **fields), 201, True)
        check_order(order)
        assert order["status"] != "pending"
        assert order["username"] == user.username and order["asset_id"] == asset_id
        return order

    def order(self, user: User, order_id: Any) -> dict:
        return check_order(assert_envelope(self.get(f"/api/v1/orders/{order_id}", user), 200, True))

    def settled_order(self, user: User, order_id: Any, filled: str | int) -> dict:
        """Return the order once its owner sees `filled` executed (a maker settles after its taker)."""
        return eventually(lambda: self.order(user, order_id),
                          lambda order: D(order["filled_quantity"]) == Decimal(str(filled)),
                          what=f"order {order_id} filled {filled}")

    def cancel(self, user: User, order_id: Any) -> httpx.Response:
        return self.delete(f"/api/v1/orders/{order_id}", user)

    def place_stop(self, user: User, asset_id: str, order_type: str, quantity: str | int, stop_price: str,
                   stop_kind: str, price: str | int | None = None, **fields) -> dict:
        """Place a stop order that must be accepted and wait (201, pending); return its OrderData."""
        response = self.submit(user, asset_id, order_type, quantity, price, stop_price=stop_price,
                               stop_kind=stop_kind, **fields)
        order = check_order(assert_envelope(response, 201, True))
        assert (order["status"], order["stop_kind"], order["triggered_at"]) == ("pending", stop_kind, None), order
        return order

    def amend(self, user: User, order_id: Any, **fields) -> httpx.Response:
        return self.patch(f"/api/v1/orders/{order_id}", user, json={k: str(v) for k, v in fields.items()})

    def cancel_all(self, user: User, asset_id: str | None = None) -> httpx.Response:
        return self.delete("/api/v1/orders", user, params={"asset_id": asset_id} if asset_id else None)

    def orders(self, user: User, **params) -> dict:
        return assert_envelope(self.get("/api/v1/orders", user, params=params), 200, True)

    # ---- accounts ------------------------------------------------------

    def balance(self, user: User, asset_id: str) -> dict:
        data = assert_envelope(self.get(f"/api/v1/balances/{asset_id}", user), 200, True)
        assert D(data["quantity"]) == D(data["available"]) + D(data["locked"]), data
        return data

    def balances(self, user: User, **params) -> dict:
        return assert_envelope(self.get("/api/v1/balances", user, params=params), 200, True)

    def amounts(self, user: User, asset_id: str) -> tuple[Decimal, Decimal]:
        """Return (available, locked) of one asset."""
        data = self.balance(user, asset_id)
        return D(data["available"]), D(data["locked"])

    def settled_amounts(self, user: User, asset_id: str, available: str | int | Decimal,
                        locked: str | int | Decimal) -> tuple[Decimal, Decimal]:
        """Wait until the user's balance shows (available, locked); fail past the deadline."""
        expected = (Decimal(str(available)), Decimal(str(locked)))
        return eventually(lambda: self.amounts(user, asset_id), lambda found: found == expected,
                          what=f"{user.username} {asset_id} balance {expected}")

    def transactions(self, user: User, asset_id: str, **params) -> dict:
        return assert_envelope(self.get(f"/api/v1/transactions/{asset_id}", user, params=params), 200, True)

    def portfolio(self, user: User) -> dict:
        return assert_envelope(self.get("/api/v1/portfolio", user), 200, True)

    def total_holdings(self, users: list[User], asset_id: str) -> Decimal:
        """Sum available + locked of one asset over the given users."""
        total = Decimal(0)
        for user in users:
            data = self.balance(user, asset_id)
            total += D(data["available"]) + D(data["locked"])
        return total

    # ---- market data ---------------------------------------------------

    def asset(self, asset_id: str) -> dict:
        return assert_envelope(self.get(f"/api/v1/assets/{asset_id}"), 200, True)

    def book(self, asset_id: str, **params) -> dict:
        return assert_envelope(self.get(f"/api/v1/assets/{asset_id}/book", params=params), 200, True)

    def trades(self, asset_id: str, **params) -> list[dict]:
        data = assert_envelope(self.get(f"/api/v1/assets/{asset_id}/trades", params=params), 200, True)
        return data if isinstance(data, list) else data["trades"]


def levels(side: list[dict]) -> list[tuple[Decimal, Decimal, int]]:
    """Turn book levels into (price, quantity, order_count) tuples."""
    return [(D(level["price"]), D(level["quantity"]), level["order_count"]) for level in side]
