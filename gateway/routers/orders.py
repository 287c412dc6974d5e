"""Orders: place, batch, get, list, amend, cancel, cancel all — the caller's own orders only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import ValidationError

from actors.messages import CancelOrder, PlaceOrder
from engine import AssetSpec, Rejected
from gateway.deps import CurrentUser, ReadingUser, Service, known_user
from gateway.direct import direct_path, is_json
from gateway.errors import ApiError, within_deadline
from gateway.exact_json import ExactJSONRequest, ExactJSONRoute
from gateway.models.common import Envelope, IsoDateTime
from gateway.models.errors import AMEND_REFUSALS, BODY, ORDER_REFUSALS, USER_AUTH, error_responses
from gateway.models.orders import (
    CancelAllData, OrderAmendRequest, OrderBatchData, OrderBatchRequest, OrderCreateRequest, OrderData,
    OrderListData, OrderStatusName, OrderTypeName,
)
from gateway.responses import ok
from gateway.routers.order_requests import (
    amend_request, order_request, outcome, parse_order_id, refuse_unplaced_batch, with_remaining,
)
from gateway.times import micros_or_none
from gateway.views import order_data

router = APIRouter(prefix="/api/v1/orders", tags=["orders"], route_class=ExactJSONRoute)


@router.post("", status_code=201, response_model=Envelope[OrderData],
             responses=error_responses(USER_AUTH, BODY, ORDER_REFUSALS, "DUPLICATE_CLIENT_ORDER_ID"))
async def create_order(body: OrderCreateRequest, username: CurrentUser, service: Service):
    """Place a market or limit order, or a stop order (stop_price and stop_kind: it waits, pending, for
    its trigger); answer once it and its matching are journaled."""
    spec, request = await order_request(service, username, body)
    result = await within_deadline(service.client.place_order(request))
    order = outcome(result, spec)
    service.metrics.count_order(order["status"])  # its 409s and 422s: gateway.metrics.HttpMetrics counts them
    return with_remaining(ok(order, "Order placed", 201), result)


@direct_path(create_order)
async def _create_order_direct(request: ExactJSONRequest):
    """`create_order` for a ready service, a known API key and a valid JSON order; else None."""
    service = request.app.state.runtime
    username = known_user(service, request)
    if username is None or not is_json(request):
        return None
    try:
        body = OrderCreateRequest.model_validate(await request.json())
    except (ValueError, ValidationError):  # JSONDecodeError is a ValueError
        return None
    return await create_order(body, username, service)


@router.post("/batch", response_model=Envelope[OrderBatchData], responses=error_responses(USER_AUTH, BODY))
async def create_orders(body: OrderBatchRequest, username: CurrentUser, service: Service):
    """Place up to 100 orders, each independent of the others; results in request order."""
    results: list = [None] * len(body.orders)
    requests: list[PlaceOrder] = []
    positions: list[tuple[int, AssetSpec]] = []
    for position, order in enumerate(body.orders):
        try:
            spec, request = await order_request(service, username, order)
        except Rejected as rejected:
            results[position] = _failure(ApiError.rejected(rejected.reason.value, rejected.message))
            continue
        except ApiError as error:
            results[position] = _failure(error)
            continue
        requests.append(request)
        positions.append((position, spec))
    answers: list = []
    if requests:
        answers = await within_deadline(service.client.place_orders(username, requests))
        for (position, spec), answer in zip(positions, answers):
            try:
                results[position] = {"success": True, "data": outcome(answer, spec)}
            except ApiError as error:
                results[position] = _failure(error)
    service.metrics.count_batch(results)
    refuse_unplaced_batch(answers)
    return with_remaining(ok({"results": results}, "Batch processed"), *answers[-1:])


def _failure(error: ApiError) -> dict:
    return {"success": False, "data": error.data, "error": {"code": error.code, "message": error.message,
                                                            "details": error.details}}


@router.get("/{order_id}", response_model=Envelope[OrderData],
            responses=error_responses(USER_AUTH, "VALIDATION_ERROR", "ORDER_NOT_FOUND"))
async def get_order(order_id: str, username: ReadingUser, service: Service):
    """Return one of the caller's orders."""
    order = await service.client.get_order(username, parse_order_id(order_id))
    if order is None:
        raise ApiError.rejected("ORDER_NOT_FOUND")
    return ok(order_data(order, await service.spec(order.asset_id)))


@router.get("", response_model=Envelope[OrderListData], responses=error_responses(USER_AUTH, "VALIDATION_ERROR"))
async def list_orders(
    username: ReadingUser, service: Service,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    order_type: OrderTypeName | None = None,
    status: OrderStatusName | None = None,
    asset_id: Annotated[str | None, Query(min_length=1, max_length=10)] = None,
    start_date: IsoDateTime | None = None,
    end_date: IsoDateTime | None = None,
):
    """List the caller's orders, newest first, with filters."""
    filters = {"order_type": order_type.value if order_type else None,
               "status": status.value if status else None, "asset_id": asset_id,
               "start": micros_or_none(start_date), "end": micros_or_none(end_date)}
    selected = await service.client.list_orders(username, filters, limit, offset)
    orders = [order_data(order, await service.spec(order.asset_id)) for order in selected.items]
    return ok({"username": username, "orders": orders, "total_count": selected.total_count,
               "has_more": selected.has_more})


@router.delete("/{order_id}", response_model=Envelope[OrderData],
               responses=error_responses(USER_AUTH, "VALIDATION_ERROR", "ORDER_NOT_FOUND", "ORDER_NOT_OPEN"))
async def cancel_order(order_id: str, username: CurrentUser, service: Service):
    """Cancel the rest of an open order and release its hold."""
    result = await within_deadline(service.client.cancel_order(CancelOrder(username, parse_order_id(order_id))))
    order = result.order
    spec = await service.spec(order.asset_id) if order is not None else None
    if not result.ok:
        raise ApiError.rejected(result.reason, data=order_data(order, spec) if order is not None else None)
    return with_remaining(ok(order_data(order, spec), "Order cancelled"), result)


@router.patch("/{order_id}", response_model=Envelope[OrderData],
              responses=error_responses(USER_AUTH, BODY, AMEND_REFUSALS, "ORDER_NOT_FOUND", "ORDER_NOT_OPEN"))
async def amend_order(order_id: str, body: OrderAmendRequest, username: CurrentUser, service: Service):
    """Change an open order or waiting stop: fewer lots (keeps its time priority), a new price (moves
    it, losing priority; a crossing move trades at once), or both; answer the order after the change."""
    order = await service.client.get_order(username, parse_order_id(order_id))
    if order is None:
        raise ApiError.rejected("ORDER_NOT_FOUND")
    spec = await service.spec(order.asset_id)
    if order.status not in ("pending", "confirmed", "processing"):
        raise ApiError.rejected("ORDER_NOT_OPEN", data=order_data(order, spec))
    request = amend_request(username, order.order_id, spec, body.quantity, body.price)
    result = await within_deadline(service.client.amend_order(request))
    if not result.ok:
        data = order_data(result.order, spec) if result.order is not None and result.reason == "ORDER_NOT_OPEN" else None
        raise ApiError.rejected(result.reason, data=data)
    return with_remaining(ok(order_data(result.order, spec), "Order amended"), result)


@router.delete("", response_model=Envelope[CancelAllData],
               responses=error_responses(USER_AUTH, "VALIDATION_ERROR", "ASSET_NOT_FOUND"))
async def cancel_all_orders(username: CurrentUser, service: Service,
                            asset_id: Annotated[str | None, Query(min_length=1, max_length=10)] = None):
    """Cancel every open order and waiting stop of the caller (of one asset when asset_id is given)."""
    if asset_id is not None and await service.spec(asset_id) is None:
        raise ApiError(404, "ASSET_NOT_FOUND", "Asset not found", details=f"no asset {asset_id!r}")
    cancelled = await within_deadline(service.client.cancel_all(username, asset_id))
    orders = [order_data(order, await service.spec(order.asset_id)) for order in cancelled]
    return ok({"cancelled": orders, "count": len(orders)}, f"{len(orders)} orders cancelled")
