"""Sync and async clients of the Order Service API, with safe retries.

Every operation is described once (`_Operations`) as a `_Call`: method, path, body, how to read
the answer and how it may be retried; `Client` and `AsyncClient` only send it. Retries:

- reads are retried on 503 and on timeouts or dropped connections;
- orders (single and batch) too, always with the same `client_order_id` (one is generated
  when the caller gives none): the service places an id at most once, and answers a retry of
  an order it already placed with 409 DUPLICATE_CLIENT_ORDER_ID and that order, which the
  client returns as the result. So a retry never places an order twice;
- other changes (cancel, admin operations) only on 503 NOT_READY, which means nothing was
  done; after a timeout their outcome is unknown, and the error is raised.

Streams (WebSocket): `AsyncClient.stream_book`, `stream_trades` and `stream_orders`, async
iterators that keep a local book and reconnect by themselves (order_service_client/streams.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, TypeVar

import httpx
from pydantic import TypeAdapter

from order_service_client.errors import ApiError, error_from_answer
from order_service_client.models import (
    AssetBalanceData, AssetBalancesData, AssetCreateRequest, AssetData, AssetTransactionData,
    AssetTransactionHistoryData, BalanceChangeData, BalanceChangeRequest, CancelAllData, OrderAmendRequest,
    OrderBatchData, OrderBatchItem, OrderBookData, OrderData, OrderListData, OrderRequest, PortfolioData,
    TradeData, UserCreateRequest, UserCreatedData,
)
from order_service_client.streams import LocalBook, TradeFrame, book_stream, order_stream, trade_stream

T = TypeVar("T")
BATCH_LIMIT = 100  # orders per POST /orders/batch
Retry = Literal["read", "order", "when_not_ready"]
_ORDER_REQUEST = TypeAdapter(OrderRequest)


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    parse: Callable[[Any, bool], Any]  # (data, retried) -> result
    retry: Retry
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)


def _model(adapter_type: Any) -> Callable[[Any, bool], Any]:
    adapter = TypeAdapter(adapter_type)
    return lambda data, _retried: adapter.validate_python(data)


def _with_client_order_id(order: Any) -> dict:
    """The order as JSON, with a client_order_id so that a retry cannot place it twice."""
    body = _ORDER_REQUEST.dump_python(_ORDER_REQUEST.validate_python(order), mode="json", exclude_none=True)
    body.setdefault("client_order_id", uuid.uuid4().hex)
    return body


def _batch_results(data: Any, retried: bool) -> list[OrderBatchItem]:
    results = OrderBatchData.model_validate(data).results
    if not retried:
        return results
    # After a retry, an order the lost attempt placed comes back as a duplicate: that is its result.
    return [OrderBatchItem(success=True, data=item.data)
            if item.error is not None and item.error.code == "DUPLICATE_CLIENT_ORDER_ID" and item.data
            else item for item in results]


class _Retrying(Exception):
    """Internal: the answer or the failure may be retried after `delay` seconds."""

    def __init__(self, error: Exception, delay: float) -> None:
        self.error = error
        self.delay = delay


class _Operations:
    """The API's operations; `_run` sends a call (sync) or returns a coroutine that does (async)."""

    retries: int
    backoff: float

    def _run(self, call: _Call) -> Any:  # pragma: no cover - implemented by the clients
        raise NotImplementedError

    # ---- market data (public) ----

    def list_assets(self) -> list[AssetData]:
        """Every asset with its last price and best bid and ask."""
        return self._run(_Call("GET", "/api/v1/assets", _model(list[AssetData]), "read"))

    def get_asset(self, asset_id: str) -> AssetData:
        return self._run(_Call("GET", f"/api/v1/assets/{asset_id}", _model(AssetData), "read"))

    def get_book(self, asset_id: str, depth: int = 20) -> OrderBookData:
        return self._run(_Call("GET", f"/api/v1/assets/{asset_id}/book", _model(OrderBookData), "read",
                               params={"depth": depth}))

    def get_trades(self, asset_id: str, limit: int = 50) -> list[TradeData]:
        return self._run(_Call("GET", f"/api/v1/assets/{asset_id}/trades", _model(list[TradeData]), "read",
                               params={"limit": limit}))

    # ---- orders ----

    def place_order(self, order: OrderRequest | dict) -> OrderData:
        """Place one order (a LimitOrderRequest or MarketOrderRequest); retried safely."""
        return self._run(_Call("POST", "/api/v1/orders", _model(OrderData), "order",
                               json=_with_client_order_id(order)))

    def place_batch(self, orders: Sequence[OrderRequest | dict]) -> list[OrderBatchItem]:
        """Place up to 100 orders in one request; results in order, each on its own."""
        if not 1 <= len(orders) <= BATCH_LIMIT:
            raise ValueError(f"a batch has 1 to {BATCH_LIMIT} orders")
        return self._run(_Call("POST", "/api/v1/orders/batch", _batch_results, "order",
                               json={"orders": [_with_client_order_id(order) for order in orders]}))

    def get_order(self, order_id: str) -> OrderData:
        return self._run(_Call("GET", f"/api/v1/orders/{order_id}", _model(OrderData), "read"))

    def list_orders(self, limit: int = 50, offset: int = 0, **filters: Any) -> OrderListData:
        """The caller's orders, newest first; filters: order_type, status, asset_id, start_date, end_date."""
        params = {"limit": limit, "offset": offset, **_query(filters)}
        return self._run(_Call("GET", "/api/v1/orders", _model(OrderListData), "read", params=params))

    def cancel_order(self, order_id: str) -> OrderData:
        return self._run(_Call("DELETE", f"/api/v1/orders/{order_id}", _model(OrderData), "when_not_ready"))

    def amend_order(self, order_id: str, quantity: Decimal | str | None = None,
                    price: Decimal | str | None = None) -> OrderData:
        """Change an open order or waiting stop: fewer lots (keeps its place), a new price (moves it)."""
        body = OrderAmendRequest(quantity=quantity, price=price).model_dump(mode="json", exclude_none=True)
        return self._run(_Call("PATCH", f"/api/v1/orders/{order_id}", _model(OrderData), "when_not_ready",
                               json=body))

    def cancel_all(self, asset_id: str | None = None) -> CancelAllData:
        """Cancel every open order and waiting stop of the caller (of one asset when given)."""
        params = {"asset_id": asset_id} if asset_id is not None else {}
        return self._run(_Call("DELETE", "/api/v1/orders", _model(CancelAllData), "when_not_ready", params=params))

    # ---- accounts ----

    def list_balances(self, limit: int = 100, offset: int = 0) -> AssetBalancesData:
        return self._run(_Call("GET", "/api/v1/balances", _model(AssetBalancesData), "read",
                               params={"limit": limit, "offset": offset}))

    def get_balance(self, asset_id: str) -> AssetBalanceData:
        return self._run(_Call("GET", f"/api/v1/balances/{asset_id}", _model(AssetBalanceData), "read"))

    def list_transactions(self, asset_id: str, limit: int = 50, offset: int = 0,
                          **filters: Any) -> AssetTransactionHistoryData:
        """The caller's fills in one asset; filters: transaction_type, start_date, end_date."""
        params = {"limit": limit, "offset": offset, **_query(filters)}
        return self._run(_Call("GET", f"/api/v1/transactions/{asset_id}", _model(AssetTransactionHistoryData),
                               "read", params=params))

    def get_portfolio(self) -> PortfolioData:
        return self._run(_Call("GET", "/api/v1/portfolio", _model(PortfolioData), "read"))

    # ---- admin (a client made with the admin token) ----

    def create_user(self, username: str) -> UserCreatedData:
        """Create a user; its API key is in the answer only."""
        body = UserCreateRequest(username=username).model_dump(mode="json")
        return self._run(_Call("POST", "/api/v1/admin/users", _model(UserCreatedData), "when_not_ready", json=body))

    def create_asset(self, asset_id: str, name: str, tick_size: Any, lot_size: Any) -> AssetData:
        body = AssetCreateRequest(asset_id=asset_id, name=name, tick_size=tick_size,
                                  lot_size=lot_size).model_dump(mode="json")
        return self._run(_Call("POST", "/api/v1/admin/assets", _model(AssetData), "when_not_ready", json=body))

    def deposit(self, username: str, asset_id: str, amount: Any) -> BalanceChangeData:
        body = BalanceChangeRequest(username=username, asset_id=asset_id, amount=amount).model_dump(mode="json")
        return self._run(_Call("POST", "/api/v1/admin/deposits", _model(BalanceChangeData), "when_not_ready",
                               json=body))

    def withdraw(self, username: str, asset_id: str, amount: Any) -> BalanceChangeData:
        body = BalanceChangeRequest(username=username, asset_id=asset_id, amount=amount).model_dump(mode="json")
        return self._run(_Call("POST", "/api/v1/admin/withdrawals", _model(BalanceChangeData), "when_not_ready",
                               json=body))

    # ---- the shared retry rules ----

    def _judge(self, call: _Call, response: httpx.Response, retried: bool) -> Any:
        """Return the call's result, raise its ApiError, or raise _Retrying."""
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if 200 <= response.status_code < 300:
            return call.parse(body["data"], retried)
        error = error_from_answer(response.status_code, body)
        if call.retry == "order" and retried and error.code == "DUPLICATE_CLIENT_ORDER_ID" and error.data:
            return call.parse(error.data, retried)  # the attempt that timed out placed it
        if response.status_code == 503 and (error.code == "NOT_READY" or call.retry != "when_not_ready"):
            raise _Retrying(error, _retry_after(response))
        raise error

    def _judge_failure(self, call: _Call, failure: httpx.TransportError) -> _Retrying:
        """A request that got no answer: retry it if that cannot do anything twice."""
        if call.retry != "when_not_ready" or isinstance(failure, httpx.ConnectError):
            return _Retrying(failure, 0.0)
        raise failure

    def _delay(self, attempt: int, suggested: float) -> float:
        return max(suggested if suggested else 0.0, self.backoff * 2 ** (attempt - 1))


def _query(filters: dict[str, Any]) -> dict[str, Any]:
    return {name: value.isoformat() if hasattr(value, "isoformat") else value
            for name, value in filters.items() if value is not None}


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "")
    return min(float(value), 5.0) if value.isdigit() else 0.0


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


class Client(_Operations):
    """A blocking client: `Client(base_url, token)`; use as a context manager or call close()."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 10.0, retries: int = 3,
                 backoff: float = 0.1, transport: httpx.BaseTransport | None = None) -> None:
        self.retries = retries
        self.backoff = backoff
        self._http = httpx.Client(base_url=base_url, headers=_headers(token), timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _run(self, call: _Call) -> Any:
        attempt = 0
        while True:
            try:
                try:
                    response = self._http.request(call.method, call.path, json=call.json, params=call.params)
                except httpx.TransportError as failure:
                    raise self._judge_failure(call, failure) from failure
                return self._judge(call, response, retried=attempt > 0)
            except _Retrying as retrying:
                attempt += 1
                if attempt > self.retries:
                    raise retrying.error from None
                time.sleep(self._delay(attempt, retrying.delay))


class AsyncClient(_Operations):
    """The same operations, each a coroutine: `async with AsyncClient(base_url, token) as client`."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 10.0, retries: int = 3,
                 backoff: float = 0.1, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.retries = retries
        self.backoff = backoff
        self._base_url, self._token = base_url, token
        self._http = httpx.AsyncClient(base_url=base_url, headers=_headers(token), timeout=timeout,
                                       transport=transport)

    def stream_book(self, asset_id: str, subscribed: asyncio.Event | None = None) -> AsyncIterator[LocalBook]:
        """The asset's book, kept from the `book` channel: `async for book in client.stream_book("BTC")`.

        `subscribed` (every stream takes it) is set while the channel is subscribed."""
        return book_stream(self._base_url, asset_id, subscribed)

    def stream_trades(self, asset_id: str, subscribed: asyncio.Event | None = None) -> AsyncIterator[TradeFrame]:
        """The asset's trades, each once, in `trade_id` order."""
        return trade_stream(self._base_url, asset_id, subscribed)

    def stream_orders(self, subscribed: asyncio.Event | None = None,
                      ) -> AsyncIterator[OrderData | AssetTransactionData]:
        """This client's user's order changes and fills (needs the user's API key)."""
        return order_stream(self._base_url, self._token or "", subscribed)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _run(self, call: _Call) -> Any:
        attempt = 0
        while True:
            try:
                try:
                    response = await self._http.request(call.method, call.path, json=call.json, params=call.params)
                except httpx.TransportError as failure:
                    raise self._judge_failure(call, failure) from failure
                return self._judge(call, response, retried=attempt > 0)
            except _Retrying as retrying:
                attempt += 1
                if attempt > self.retries:
                    raise retrying.error from None
                await asyncio.sleep(self._delay(attempt, retrying.delay))


def place_in_batches(client: Client, orders: Sequence[OrderRequest | dict]) -> list[OrderBatchItem]:
    """Place any number of orders, 100 per request, results in order (sync clients)."""
    results: list[OrderBatchItem] = []
    for start in range(0, len(orders), BATCH_LIMIT):
        results.extend(client.place_batch(orders[start:start + BATCH_LIMIT]))
    return results


async def place_in_batches_async(client: AsyncClient, orders: Sequence[OrderRequest | dict]) -> list[OrderBatchItem]:
    """Place any number of orders, 100 per request, results in order (async clients)."""
    results: list[OrderBatchItem] = []
    for start in range(0, len(orders), BATCH_LIMIT):
        results.extend(await client.place_batch(orders[start:start + BATCH_LIMIT]))
    return results


__all__ = ["ApiError", "AsyncClient", "Client", "place_in_batches", "place_in_batches_async"]
