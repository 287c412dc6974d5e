"""The Python client (client/) against the real service: every operation, typed errors, safe
retries, the models checked against /openapi.json, and examples/quickstart.py run end to end."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from decimal import Decimal

import httpx
import pytest
from pydantic import BaseModel

from order_service_client import (
    AsyncClient, Client, Conflict, Forbidden, InvalidRequest, LimitOrderRequest, MarketOrderRequest, NotFound,
    Unauthorized, place_in_batches,
)
from order_service_client import models
from tests.e2e.api import unique_suffix
from tests.e2e.process import REPOSITORY


class LoseFirstAnswer(httpx.BaseTransport):
    """Send every request to the real service, but report the first one as timed out."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.inner.handle_request(request)
        response.read()
        if len(self.requests) == 1:
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


@pytest.fixture(scope="module")
def admin(service):
    with Client(service.base_url, service.admin_token) as client:
        yield client


@pytest.fixture(scope="module")
def market(admin):
    asset_id = f"C{unique_suffix().upper()}"[:10]
    admin.create_asset(asset_id, "Client test coin", tick_size="0.01", lot_size="0.1")
    return asset_id


def _user(admin, market, usd="1000", asset="10"):
    created = admin.create_user(f"cl{unique_suffix()}")
    admin.deposit(created.username, "USD", usd)
    admin.deposit(created.username, market, asset)
    return created


def test_models_match_the_components_of_the_openapi_document(api):
    components = api.http.get("/openapi.json").json()["components"]["schemas"]
    checked = 0
    for name in dir(models):
        model = getattr(models, name)
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or model.__module__ != models.__name__ \
                or name.startswith("_"):
            continue
        component = components[name]
        assert set(model.model_fields) == set(component["properties"]), name
        required = {field for field, info in model.model_fields.items() if info.is_required()}
        assert required == set(component.get("required", [])), name
        checked += 1
    assert checked >= 20


def test_client_places_gets_lists_and_cancels_orders(admin, market, service):
    user = _user(admin, market)
    with Client(service.base_url, user.api_key) as client:
        order = client.place_order(LimitOrderRequest(asset_id=market, order_type="limit_buy", quantity="2",
                                                     price="10.50", client_order_id="first-order"))
        assert (order.status, order.quantity, order.price) == ("confirmed", Decimal(2), Decimal("10.5"))
        assert client.get_order(order.order_id) == order
        listed = client.list_orders(asset_id=market, status="confirmed")
        assert [item.order_id for item in listed.orders] == [order.order_id] and listed.total_count == 1
        assert client.get_balance("USD").locked == Decimal(21)
        cancelled = client.cancel_order(order.order_id)
        assert (cancelled.status, cancelled.reason) == ("cancelled", "user_cancelled")
        assert client.get_balance("USD").locked == 0
        with pytest.raises(Conflict) as caught:
            client.cancel_order(order.order_id)
        assert caught.value.code == "ORDER_NOT_OPEN"


def test_client_trades_and_reports_balances_transactions_and_portfolio(admin, market, service):
    seller, buyer = _user(admin, market), _user(admin, market)
    with Client(service.base_url, seller.api_key) as alice, Client(service.base_url, buyer.api_key) as bob:
        alice.place_order({"asset_id": market, "order_type": "limit_sell", "quantity": "1", "price": "20"})
        fill = bob.place_order(MarketOrderRequest(asset_id=market, order_type="market_buy", quantity="1"))
        assert (fill.status, fill.filled_quantity, fill.average_price) == ("completed", 1, Decimal(20))
        assert bob.get_balance(market).quantity == Decimal(11)
        history = bob.list_transactions(market)
        assert [(item.transaction_type, item.price) for item in history.transactions] == [("BUY", Decimal(20))]
        portfolio = bob.get_portfolio()
        assert portfolio.usd_balance == Decimal(980)
        assert portfolio.total_portfolio_value == portfolio.usd_balance + portfolio.total_asset_value
        balances = bob.list_balances()
        assert {row.asset_id for row in balances.asset_balances} == {"USD", market}
        assert bob.get_trades(market)[0].price == Decimal(20)
        assert any(asset.asset_id == market for asset in bob.list_assets())
        assert bob.get_asset(market).last_price == Decimal(20)
        assert bob.get_book(market).asks == []


def test_client_places_a_stop_amends_and_cancels_all(admin, market, service):
    user = _user(admin, market)
    with Client(service.base_url, user.api_key) as client:
        stop = client.place_order(LimitOrderRequest(asset_id=market, order_type="limit_sell", quantity="2",
                                                    price="1", stop_price="1.5", stop_kind="stop_loss"))
        assert (stop.status, stop.stop_price, stop.stop_kind, stop.triggered_at) == (
            "pending", Decimal("1.5"), "stop_loss", None)
        bid = client.place_order({"asset_id": market, "order_type": "limit_buy", "quantity": "3", "price": "2"})
        amended = client.amend_order(bid.order_id, quantity="1.5", price="2.5")
        assert (amended.quantity, amended.price) == (Decimal("1.5"), Decimal("2.5"))
        with pytest.raises(InvalidRequest) as caught:
            client.amend_order(bid.order_id)
        assert caught.value.code == "INVALID_AMEND"
        cancelled = client.cancel_all(market)
        assert cancelled.count == 2 and {order.order_id for order in cancelled.cancelled} == {
            stop.order_id, bid.order_id}


def test_client_batch_answers_each_order_and_splits_long_lists(admin, market, service):
    user = _user(admin, market, usd="100000")
    with Client(service.base_url, user.api_key) as client:
        results = client.place_batch([
            LimitOrderRequest(asset_id=market, order_type="limit_buy", quantity="1", price="1"),
            {"asset_id": market, "order_type": "limit_buy", "quantity": "1", "price": "1.001"}])
        assert [item.success for item in results] == [True, False]
        assert results[1].error.code == "INVALID_TICK_SIZE"
        many = [LimitOrderRequest(asset_id=market, order_type="limit_buy", quantity="0.1", price="1")] * 150
        placed = place_in_batches(client, many)
        assert len(placed) == 150 and all(item.success for item in placed)
        assert len({item.data.client_order_id for item in placed}) == 150  # one generated id each
        assert client.list_orders(limit=1).total_count == 151


def test_client_raises_typed_errors_with_the_api_code(admin, market, service):
    user = _user(admin, market, usd="1")
    with Client(service.base_url, user.api_key) as client:
        with pytest.raises(InvalidRequest) as caught:
            client.place_order(LimitOrderRequest(asset_id=market, order_type="limit_buy", quantity="1", price="5"))
        assert caught.value.code == "INSUFFICIENT_BALANCE" and caught.value.status == 422
        with pytest.raises(NotFound) as caught:
            client.get_order("12345678")
        assert caught.value.code == "ORDER_NOT_FOUND"
        with pytest.raises(Forbidden):
            client.create_user(f"x{unique_suffix()}")
    with Client(service.base_url, "wrong-token") as stranger, pytest.raises(Unauthorized) as caught:
        stranger.get_portfolio()
    assert caught.value.code == "UNAUTHORIZED"
    with pytest.raises(Conflict) as caught:
        admin.create_user(user.username)
    assert caught.value.code == "USER_EXISTS"
    with pytest.raises(InvalidRequest) as caught:
        admin.withdraw(user.username, "USD", "2")
    assert caught.value.code == "INSUFFICIENT_BALANCE"
    assert admin.withdraw(user.username, "USD", "0.5").available == Decimal("0.5")


def test_order_whose_answer_timed_out_is_retried_with_its_id_and_placed_once(admin, market, service):
    user = _user(admin, market)
    transport = LoseFirstAnswer()
    with Client(service.base_url, user.api_key, transport=transport) as client:
        order = client.place_order(LimitOrderRequest(asset_id=market, order_type="limit_buy", quantity="1",
                                                     price="3"))
    assert len(transport.requests) == 2
    assert transport.requests[0].content == transport.requests[1].content  # the same client_order_id
    assert order.client_order_id and order.status == "confirmed"
    with Client(service.base_url, user.api_key) as client:
        assert client.list_orders().total_count == 1
        assert client.get_balance("USD").locked == Decimal(3)


def test_cancel_whose_answer_timed_out_is_not_retried(admin, market, service):
    user = _user(admin, market)
    with Client(service.base_url, user.api_key) as client:
        order = client.place_order(LimitOrderRequest(asset_id=market, order_type="limit_buy", quantity="1",
                                                     price="3"))
    transport = LoseFirstAnswer()
    with Client(service.base_url, user.api_key, transport=transport) as client, pytest.raises(httpx.ReadTimeout):
        client.cancel_order(order.order_id)
    assert len(transport.requests) == 1


def test_async_client_places_and_reads(admin, market, service):
    user = _user(admin, market)

    async def session():
        async with AsyncClient(service.base_url, user.api_key) as client:
            placed = await asyncio.gather(*(client.place_order(
                LimitOrderRequest(asset_id=market, order_type="limit_sell", quantity="1", price=str(30 + n)))
                for n in range(3)))
            listed = await client.list_orders()
            return placed, listed, await client.get_balance(market)

    placed, listed, balance = asyncio.run(session())
    assert {order.order_id for order in placed} == {order.order_id for order in listed.orders}
    assert balance.locked == Decimal(3)


def test_quickstart_example_trades_and_prints_the_portfolio(service):
    result = subprocess.run([sys.executable, str(REPOSITORY / "examples" / "quickstart.py"), "--url",
                             service.base_url, "--admin-token", service.admin_token],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "buys 1.5 at 100: completed" in result.stdout, result.stdout
    assert "asks [('100', '1')]" in result.stdout, result.stdout  # the stream's book: what is left to sell
    assert "total 1000 USD" in result.stdout, result.stdout
