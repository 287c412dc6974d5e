"""From validated requests to actor calls, and from actor answers to responses."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import ray

from engine import AssetSpec
from gateway.errors import ApiError, unavailable
from gateway.models.orders import OrderCreateRequest
from gateway.runtime import REQUEST_TIMEOUT_SECONDS, Runtime
from gateway.views import order_data

MAX_QUANTITY = Decimal(1_000_000)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


async def order_request(service: Runtime, username: str, body: OrderCreateRequest) -> tuple[AssetSpec, tuple]:
    """Check an order against its asset's rules and build the shard's request tuple."""
    spec = await service.spec(body.asset_id)
    if spec is None:
        raise ApiError.rejected("UNKNOWN_ASSET", details=f"no asset {body.asset_id!r}")
    order_type = body.order_type.value
    is_market = order_type.startswith("market")
    if is_market and body.price is not None:
        raise ApiError(422, "INVALID_ORDER", "A market order takes no price")
    if not is_market and body.price is None:
        raise ApiError(422, "INVALID_ORDER", "A limit order needs a price")
    time_in_force = body.time_in_force.value if body.time_in_force else ("ioc" if is_market else "gtc")
    if is_market and time_in_force == "gtc":
        raise ApiError(422, "INVALID_ORDER", "A market order is ioc or fok")
    if body.post_only and (is_market or time_in_force != "gtc"):
        raise ApiError(422, "INVALID_ORDER", "post_only is for gtc limit orders only")
    if not body.quantity.is_finite() or body.quantity > MAX_QUANTITY:
        raise ApiError(422, "INVALID_QUANTITY", "quantity must be greater than 0 and at most 1000000")
    quantity = spec.to_lots(body.quantity)
    price = None if is_market else spec.to_ticks(body.price)
    return spec, (username, spec.asset_id, order_type, time_in_force, bool(body.post_only), quantity,
                  price, body.client_order_id, body.description)


def outcome(result: tuple, spec: AssetSpec) -> dict:
    """Turn a shard's answer to an order into OrderData, or raise the mapped error."""
    status, payload = result
    if status == "ok":
        return order_data(payload, spec)
    if status == "duplicate":
        raise ApiError.rejected("DUPLICATE_CLIENT_ORDER_ID", data=order_data(payload, spec))
    raise ApiError.rejected(payload)


def parse_order_id(text: str) -> int:
    """Order ids are decimal integers; anything else is simply not found."""
    if not text.isascii() or not text.isdigit() or len(text) > 20:
        raise ApiError.rejected("ORDER_NOT_FOUND")
    return int(text)


def micros(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // timedelta(microseconds=1)


async def within_deadline(call):
    """Await an actor call that changes state; a restart under it is a retryable 503."""
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):  # unlike wait_for, no task per request
            return await call
    except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError, asyncio.TimeoutError):
        raise unavailable() from None
