"""Health probes answer plain JSON; the OpenAPI document follows the seed's model names."""

from __future__ import annotations

import http.client
import time
from urllib.parse import urlsplit

from tests.e2e.api import ORDER_FIELDS, parse_time

SEED_MODELS = ["OrderCreateRequest", "OrderData", "PortfolioData", "AssetBalanceData", "AssetBalancesData",
               "OrderListData", "AssetTransactionHistoryData"]
CONTRACT_ROUTES = [
    ("post", "/api/v1/admin/users"), ("post", "/api/v1/admin/assets"), ("post", "/api/v1/admin/deposits"),
    ("post", "/api/v1/admin/withdrawals"), ("get", "/api/v1/assets"), ("get", "/api/v1/assets/{asset_id}"),
    ("get", "/api/v1/assets/{asset_id}/book"), ("get", "/api/v1/assets/{asset_id}/trades"),
    ("post", "/api/v1/orders"), ("get", "/api/v1/orders"), ("get", "/api/v1/orders/{order_id}"),
    ("delete", "/api/v1/orders/{order_id}"), ("post", "/api/v1/orders/batch"), ("get", "/api/v1/balances"),
    ("get", "/api/v1/balances/{asset_id}"), ("get", "/api/v1/transactions/{asset_id}"),
    ("get", "/api/v1/portfolio"), ("get", "/health"), ("get", "/health/ready"), ("get", "/health/live"),
]


def test_health_answers_its_fields_without_envelope(api, service):
    response = api.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert {"status", "timestamp", "service", "version", "uptime", "database", "actors", "journal"} <= body.keys()
    assert "success" not in body and "data" not in body
    parse_time(body["timestamp"])
    assert body["database"] == "ok", body  # the seed's string, not an object
    assert str(service.data_dir) not in response.text and "/tmp" not in response.text, "a public route shows a path"


def test_health_live_answers_200_without_envelope(api):
    response = api.get("/health/live")
    assert response.status_code == 200
    body = response.json()
    assert "success" not in body
    assert body["status"] == "alive" and isinstance(body["service"], str) and isinstance(body["version"], str)


def test_health_ready_answers_ready_once_recovered(api):
    response = api.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready" and "success" not in body
    assert body["database"] == "ok"
    services = body["external_services"]
    assert {"registry", "shard-0", "book-0"} <= services.keys() and set(services.values()) == {"ok"}, services


def test_openapi_names_the_seed_models(api):
    response = api.get("/openapi.json")
    assert response.status_code == 200
    schemas = response.json()["components"]["schemas"]
    missing = [name for name in SEED_MODELS if name not in schemas]
    assert not missing, f"missing from /openapi.json: {missing}"


def test_openapi_order_models_carry_the_contract_fields(api):
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    request_fields = set(schemas["OrderCreateRequest"]["properties"])
    assert {"asset_id", "order_type", "quantity", "price", "time_in_force", "post_only", "client_order_id",
            "description"} <= request_fields
    assert ORDER_FIELDS <= set(schemas["OrderData"]["properties"])
    assert {"usd_balance", "total_asset_value", "total_portfolio_value", "asset_count", "assets"} <= \
        set(schemas["PortfolioData"]["properties"])


def test_openapi_lists_every_route_of_the_contract(api):
    paths = api.get("/openapi.json").json()["paths"]
    missing = [f"{method.upper()} {path}" for method, path in CONTRACT_ROUTES
               if method not in paths.get(path, {})]
    assert not missing, f"routes absent from /openapi.json: {missing}"


def test_docs_page_answers_200(api):
    response = api.get("/docs")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]


def test_an_idle_keep_alive_connection_outlasts_a_clients_pool_expiry(service):
    """Regression: the server closed keep-alive connections idle for 5 s, the idle expiry of httpx's
    pool too, so a client reusing one at that moment got a reset (httpx.ReadError) for a request
    the server never saw. An idle connection now stays open past any client's 5 s."""
    address = urlsplit(service.base_url)
    # One socket, never reopened: a connection the server closed fails the second request
    # (http.client.RemoteDisconnected) instead of being replaced as a pool would.
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.request("GET", "/health/live")
        assert connection.getresponse().read()
        time.sleep(6)  # not synchronisation: the idle time under test
        connection.request("GET", "/health/live")
        response = connection.getresponse()
        assert response.status == 200 and response.read()
    finally:
        connection.close()
