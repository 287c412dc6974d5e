"""Python client of the Order Service HTTP API: `Client` (blocking) and `AsyncClient`."""

from order_service_client.client import AsyncClient, Client, place_in_batches, place_in_batches_async
from order_service_client.errors import (
    ApiError, Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized, Unavailable,
)
from order_service_client.models import BookLevel, LimitOrderRequest, MarketOrderRequest, OrderData, OrderRequest
from order_service_client.streams import LocalBook, TradeFrame

__all__ = ["ApiError", "AsyncClient", "BookLevel", "Client", "Conflict", "Forbidden", "InvalidRequest",
           "LimitOrderRequest", "LocalBook", "MarketOrderRequest", "NotFound", "OrderData", "OrderRequest",
           "TradeFrame", "Unauthorized", "Unavailable", "place_in_batches", "place_in_batches_async"]
