"""Read-only views of an `Accounts`: open orders and audits.

Lists are newest first, as API.md promises. The audit states the invariants
of DESIGN.md for one shard: no negative balance, holds equal what open orders
and waiting stops reserve; the totals it returns add up across shards to deposits − withdrawals.
"""

from __future__ import annotations

from typing import Generic, NamedTuple, TypeVar

from engine.accounts import Accounts
from engine.numbers import USD
from engine.orders import OrderRecord, Side

T = TypeVar("T")


class Page(NamedTuple, Generic[T]):
    """One page of a list, newest first, with the size of the whole list."""

    items: list[T]
    total_count: int
    has_more: bool


class OpenOrder(NamedTuple):
    """An open order as a shard's audit sees it (compared with its book's resting order)."""

    order_id: int
    asset_id: str
    side: str
    price: int | None
    remaining_quantity: int
    username: str
    status: str
    waiting: bool = False  # a stop waiting for its trigger: in its book's stops, not on the book


def user_open_orders(
    accounts: Accounts, username: str, *, order_type: str | None = None, status: str | None = None,
    asset_id: str | None = None, start: int | None = None, end: int | None = None,
) -> list[OrderRecord]:
    """Return the user's open orders matching every given filter, newest first."""
    orders = accounts.orders
    return [orders[order_id] for order_id in reversed(accounts.orders_by_user.get(username, {}))
            if order_matches(orders[order_id], order_type=order_type, status=status, asset_id=asset_id,
                             start=start, end=end)]


def order_matches(order: OrderRecord, *, order_type: str | None = None, status: str | None = None,
                  asset_id: str | None = None, start: int | None = None, end: int | None = None) -> bool:
    """Tell whether an order passes the list filters of API.md (dates bound `created_at`, inclusive)."""
    return ((order_type is None or order.order_type.value == order_type)
            and (status is None or order.status.value == status)
            and (asset_id is None or order.asset_id == asset_id)
            and (start is None or order.created_at >= start)
            and (end is None or order.created_at <= end))


def audit(accounts: Accounts) -> dict:
    """Check this shard's invariants; return totals per asset and every problem found."""
    problems: list[str] = []
    totals: dict[str, int] = {}
    reserved: dict[tuple[str, str], int] = {}
    open_orders = []
    for order in accounts.orders.values():
        if order.is_open:
            held_asset = USD if order.side == Side.BUY else order.asset_id
            key = (order.username, held_asset)
            reserved[key] = reserved.get(key, 0) + order.reserved
            open_orders.append(OpenOrder(order.order_id, order.asset_id, order.side.value, order.price,
                                         order.remaining_quantity, order.username, order.status.value,
                                         order.stop_waiting))
        elif order.reserved:
            problems.append(f"closed order {order.order_id} still reserves {order.reserved}")
        if order.remaining_quantity != order.quantity - order.filled_quantity or order.filled_quantity > order.quantity:
            problems.append(f"order {order.order_id} has inconsistent quantities")
    for username, balances in accounts.balances.items():
        for asset_id, (available, held, _) in balances.items():
            if available < 0 or held < 0:
                problems.append(f"{username} has a negative {asset_id} balance")
            totals[asset_id] = totals.get(asset_id, 0) + available + held
            if held != reserved.get((username, asset_id), 0):
                problems.append(f"{username} holds {held} {asset_id} but open orders reserve "
                                f"{reserved.get((username, asset_id), 0)}")
    for (username, asset_id), amount in reserved.items():
        if amount and asset_id not in accounts.balances.get(username, {}):
            problems.append(f"{username} has open orders reserving {asset_id} but no balance")
    return {
        "totals": totals,
        "net_deposits": dict(accounts.net_deposits),
        "open_orders": open_orders,
        "pending_orders": sum(1 for order in open_orders if order.status == "pending" and not order.waiting),
        "waiting_stops": sum(1 for order in open_orders if order.waiting),
        "problems": problems,
    }
