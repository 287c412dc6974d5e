"""Orders at the edge: a request checked against its asset into a `PlaceOrder`, and a shard's
`OrderOutcome` back into OrderData or the mapped error."""

from __future__ import annotations

from decimal import Decimal

from engine import AssetSpec, check_order_shape
from engine.orders import ORDER_TYPES, TIMES_IN_FORCE, stop_triggered
from gateway.errors import ApiError
from gateway.models.orders import BatchOrderItem
from gateway.runtime import Runtime
from gateway.views import order_data
from actors.messages import DUPLICATE, PLACED, AmendOrder, OrderOutcome, PlaceOrder
from actors.shard_access import RATE_LIMITED

MAX_QUANTITY = Decimal(1_000_000)


async def order_request(service: Runtime, username: str, body: BatchOrderItem) -> tuple[AssetSpec, PlaceOrder]:
    """Check an order against its asset's rules and build the shard's request."""
    spec = await service.spec(body.asset_id)
    if spec is None:
        raise ApiError.rejected("UNKNOWN_ASSET", details=f"no asset {body.asset_id!r}")
    order_type = ORDER_TYPES[body.order_type.value]  # a dict look-up: the Enum call costs ten times more
    time_in_force = TIMES_IN_FORCE[body.time_in_force.value if body.time_in_force
                                   else order_type.default_time_in_force]
    stop_kind = body.stop_kind.value if body.stop_kind is not None else None
    misshapen = check_order_shape(order_type, time_in_force, bool(body.post_only), body.price is not None,
                                  body.stop_price is not None, stop_kind)
    if misshapen is not None:
        raise ApiError(422, misshapen.reason.value, misshapen.message)
    if not body.quantity.is_finite() or body.quantity > MAX_QUANTITY:
        raise ApiError(422, "INVALID_QUANTITY", "quantity must be greater than 0 and at most 1000000")
    quantity = spec.to_lots(body.quantity)
    price = None if order_type.is_market else spec.to_ticks(body.price)
    stop_price = None
    if stop_kind is not None:
        stop_price = spec.to_ticks(body.stop_price)
        # Against the book's last trade price now. A trade between this look and the order's
        # arrival at its book may make the trigger hold there: the book then triggers it at once.
        if stop_triggered(order_type.side.value, stop_kind, stop_price, await service.client.last_price(spec.asset_id)):
            raise ApiError.rejected("STOP_WOULD_TRIGGER", details="the last trade price already reached stop_price")
    return spec, PlaceOrder(username, spec.asset_id, order_type.value, time_in_force.value, bool(body.post_only),
                            quantity, price, body.client_order_id, body.description, stop_price, stop_kind)


def outcome(result: OrderOutcome, spec: AssetSpec) -> dict:
    """Turn a shard's answer to an order into OrderData, or raise the mapped error."""
    if result.status == PLACED:
        return order_data(result.order, spec)
    if result.status == DUPLICATE:
        raise ApiError.rejected("DUPLICATE_CLIENT_ORDER_ID", data=order_data(result.order, spec))
    raise ApiError.rejected(result.reason)


def with_remaining(response, result: OrderOutcome | None = None):
    """Add the order limit's `X-RateLimit-Remaining` (the shard's count, while the limit is on)."""
    if result is not None and result.remaining is not None:
        response.headers["X-RateLimit-Remaining"] = str(result.remaining)
    return response


def refuse_unplaced_batch(answers: list[OrderOutcome]) -> None:
    """A batch of which the order limit let no order through answers 429 (API.md), nothing placed."""
    if answers and any(answer.reason == RATE_LIMITED for answer in answers) and not any(
            answer.status == PLACED for answer in answers):
        raise ApiError.rejected(RATE_LIMITED)


def parse_order_id(text: str) -> int:
    """Order ids are decimal integers; anything else is simply not found."""
    if not text.isascii() or not text.isdigit() or len(text) > 20:
        raise ApiError.rejected("ORDER_NOT_FOUND")
    return int(text)


def amend_request(username: str, order_id: int, spec: AssetSpec, quantity: Decimal | None,
                  price: Decimal | None) -> AmendOrder:
    """Check an amend's numbers against the order's asset and build the shard's request."""
    if quantity is None and price is None:
        raise ApiError.rejected("INVALID_AMEND", details="give quantity, price or both")
    lots = None
    if quantity is not None:
        if not quantity.is_finite() or quantity <= 0:  # at or below any filled quantity
            raise ApiError.rejected("INVALID_AMEND", details="quantity must stay above filled_quantity")
        if quantity > MAX_QUANTITY:
            raise ApiError.rejected("INVALID_AMEND", details="quantity may only go down")
        lots = spec.to_lots(quantity)
    ticks = None if price is None else spec.to_ticks(price)
    return AmendOrder(username, order_id, lots, ticks)
