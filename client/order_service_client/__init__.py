"""Python client of the Order Service HTTP API: `Client` (blocking) and `AsyncClient`."""

from order_service_client.client import AsyncClient, Client, place_in_batches, place_in_batches_async
from order_service_client.errors import (
    ApiError, Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized, Unavailable,
)
from order_service_client.models import LimitOrderRequest, MarketOrderRequest, OrderData, OrderRequest

__all__ = ["ApiError", "AsyncClient", "Client", "Conflict", "Forbidden", "InvalidRequest", "LimitOrderRequest",
           "MarketOrderRequest", "NotFound", "OrderData", "OrderRequest", "Unauthorized", "Unavailable",
           "place_in_batches", "place_in_batches_async"]
