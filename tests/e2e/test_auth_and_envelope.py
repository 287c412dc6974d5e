"""Authentication (401 with a Bearer challenge, 403 for users on admin routes) and the envelope."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.e2e.api import ENVELOPE_KEYS, assert_envelope, assert_error

USER_ROUTES = [
    ("GET", "/api/v1/orders", None),
    ("POST", "/api/v1/orders", {"asset_id": "ABC", "order_type": "limit_buy", "quantity": "1", "price": "1"}),
    ("GET", "/api/v1/orders/1", None),
    ("DELETE", "/api/v1/orders/1", None),
    ("POST", "/api/v1/orders/batch", {"orders": [{"asset_id": "ABC", "order_type": "limit_buy",
                                                  "quantity": "1", "price": "1"}]}),
    ("GET", "/api/v1/balances", None),
    ("GET", "/api/v1/balances/USD", None),
    ("GET", "/api/v1/transactions/USD", None),
    ("GET", "/api/v1/portfolio", None),
]
ADMIN_ROUTES = [
    ("/api/v1/admin/users", {"username": "nobody_here"}),
    ("/api/v1/admin/assets", {"asset_id": "NOPE", "name": "Nope", "tick_size": "0.01", "lot_size": "1"}),
    ("/api/v1/admin/deposits", {"username": "nobody_here", "asset_id": "USD", "amount": "1"}),
    ("/api/v1/admin/withdrawals", {"username": "nobody_here", "asset_id": "USD", "amount": "1"}),
]
USER_ROUTE_IDS = [f"{method} {path}" for method, path, _ in USER_ROUTES]
ADMIN_ROUTE_IDS = [path for path, _ in ADMIN_ROUTES]


def _request(api, method, path, body, headers):
    return api.http.request(method, path, json=body, headers=headers)


def _assert_unauthorized(response):
    assert_error(response, 401)
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.lower().startswith("bearer"), f"WWW-Authenticate is {challenge!r}"


@pytest.mark.parametrize(("method", "path", "body"), USER_ROUTES, ids=USER_ROUTE_IDS)
def test_user_route_without_token_answers_401_with_bearer_challenge(api, method, path, body):
    _assert_unauthorized(_request(api, method, path, body, None))


@pytest.mark.parametrize(("method", "path", "body"), USER_ROUTES, ids=USER_ROUTE_IDS)
def test_user_route_with_unknown_token_answers_401_with_bearer_challenge(api, method, path, body):
    _assert_unauthorized(_request(api, method, path, body, {"Authorization": "Bearer not-a-real-key"}))


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "bearer-less-token"])
def test_malformed_authorization_header_answers_401(api, header):
    _assert_unauthorized(api.http.get("/api/v1/balances", headers={"Authorization": header}))


def test_admin_token_on_user_route_is_refused(api):
    # API.md does not say which: the admin is authenticated but is no user.
    response = api.http.get("/api/v1/balances", headers=api.admin_headers)
    assert response.status_code in (401, 403), response.text
    assert_error(response, response.status_code)


@pytest.mark.parametrize(("path", "body"), ADMIN_ROUTES, ids=ADMIN_ROUTE_IDS)
def test_admin_route_without_token_answers_401_with_bearer_challenge(api, path, body):
    _assert_unauthorized(api.http.post(path, json=body))


@pytest.mark.parametrize(("path", "body"), ADMIN_ROUTES, ids=ADMIN_ROUTE_IDS)
def test_admin_route_with_wrong_token_answers_401(api, path, body):
    _assert_unauthorized(api.http.post(path, json=body, headers={"Authorization": f"Bearer {api.admin_token}x"}))


@pytest.mark.parametrize(("path", "body"), ADMIN_ROUTES, ids=ADMIN_ROUTE_IDS)
def test_admin_route_with_user_token_answers_403_and_changes_nothing(api, path, body):
    user = api.new_user(usd="10")
    response = api.http.post(path, json={**body, "username": user.username}, headers=user.headers)
    assert_error(response, 403)
    assert api.amounts(user, "USD") == (Decimal(10), Decimal(0))


@pytest.mark.parametrize("path", ["/api/v1/assets", "/api/v1/assets/{asset}", "/api/v1/assets/{asset}/book",
                                  "/api/v1/assets/{asset}/trades"])
def test_market_data_route_answers_without_token(api, path):
    asset_id = api.new_asset()
    assert_envelope(api.http.get(path.format(asset=asset_id)), 200, True)


def test_validation_error_answers_422_in_envelope_not_fastapi_body(api):
    user = api.new_user()
    response = api.post("/api/v1/orders", user, json={"asset_id": "ABC"})
    body = assert_error(response, 422)
    assert "detail" not in body
    assert body["data"] is None


def test_malformed_json_body_answers_422_in_envelope(api):
    user = api.new_user()
    response = api.http.post("/api/v1/orders", content=b'{"asset_id": ', headers={
        **user.headers, "Content-Type": "application/json"})
    body = assert_error(response, 422)
    assert "detail" not in body


def test_unknown_route_answers_404_in_envelope(api):
    body = assert_error(api.http.get("/api/v1/no-such-route"), 404)
    assert ENVELOPE_KEYS <= body.keys()


def test_wrong_method_answers_405_in_envelope(api):
    user = api.new_user()
    assert_error(api.http.put("/api/v1/orders", json={}, headers=user.headers), 405)


def test_service_logs_never_contain_tokens(api, service):
    user = api.new_user(usd="5")
    api.balances(user)
    api.http.get("/api/v1/balances", headers={"Authorization": "Bearer wrong-token-for-logs"})
    logs = service.logs()
    assert service.admin_token not in logs
    assert user.api_key not in logs
    assert "wrong-token-for-logs" not in logs


def test_api_keys_are_not_stored_in_clear_in_the_data_dir(api, service):
    user = api.new_user(usd="1")
    api.balances(user)
    key = user.api_key.encode()
    holders = [path for path in service.data_dir.rglob("*") if path.is_file() and key in path.read_bytes()]
    assert holders == [], f"the API key is stored in clear in {holders}"
