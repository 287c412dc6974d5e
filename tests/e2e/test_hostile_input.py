"""Hand-written hostile requests: every one gets a clear 4xx in the envelope, and nothing changes."""

from __future__ import annotations

import pytest

from tests.e2e.api import Api

ORDERS = "/api/v1/orders"


def error_code(response) -> str:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    body = response.json()
    assert body["success"] is False and set(body) >= {"message", "data", "timestamp", "error"}
    assert "Traceback" not in response.text
    return body["error"]["code"]


@pytest.fixture(scope="module")
def market(api: Api):
    asset_id = api.new_asset()
    user = api.new_user(usd="1000", assets={asset_id: "10"})
    return asset_id, user


def balances_of(api: Api, user, asset_id):
    return api.amounts(user, "USD"), api.amounts(user, asset_id)


@pytest.mark.parametrize("body, content_type", [
    (b"{" * 100_000 + b"}" * 100_000, "application/json"),          # deeply nested
    (b'[' * 5_000 + b']' * 5_000, "application/json"),
    (b'{"asset_id": "X", "order_type": "limit_buy"', "application/json"),  # truncated
    (b"\xff\xfe\x00garbage", "application/json"),                   # not UTF-8
    (b"asset_id=X&order_type=limit_buy", "application/x-www-form-urlencoded"),
    (b'{"asset_id": "X"}', "text/plain"),
    (b"", "application/json"),
])
def test_order_with_malformed_body_is_refused_with_4xx(api: Api, market, body, content_type):
    asset_id, user = market
    before = balances_of(api, user, asset_id)
    response = api.http.post(ORDERS, content=body, headers={**user.headers, "Content-Type": content_type})
    error_code(response)
    assert balances_of(api, user, asset_id) == before


@pytest.mark.parametrize("field, value", [
    ("price", "1e999999"), ("price", "-0"), ("price", "-0.00"), ("quantity", "-0"),
    ("price", "0x10"), ("price", "１００"), ("quantity", "1" * 5000), ("price", 1e308),
    ("price", "NaN"), ("quantity", "Infinity"), ("price", True), ("price", [1]), ("price", {"a": 1}),
    ("description", "x" * 65_536), ("client_order_id", "../../etc/passwd"), ("client_order_id", "ａｂｃ"),
    ("asset_id", "../ADMIN"), ("order_type", "LIMIT_BUY"), ("time_in_force", "day"),
])
def test_order_with_hostile_field_is_refused_and_holds_nothing(api: Api, market, field, value):
    asset_id, user = market
    body = {"asset_id": asset_id, "order_type": "limit_buy", "quantity": "1", "price": "1.00", field: value}
    before = balances_of(api, user, asset_id)
    response = api.http.post(ORDERS, json=body, headers=user.headers)
    error_code(response)
    assert balances_of(api, user, asset_id) == before


@pytest.mark.parametrize("order_id", ["../../admin", "%2e%2e%2fadmin", "1;DROP TABLE", "-1", "1e3",
                                      "99999999999999999999999", "０", " 1"])
def test_order_id_that_is_not_a_plain_number_answers_not_found(api: Api, market, order_id):
    _, user = market
    response = api.http.get(f"{ORDERS}/{order_id}", headers=user.headers)
    assert error_code(response) in ("ORDER_NOT_FOUND", "NOT_FOUND")


@pytest.mark.parametrize("username", ["аlice", "ALICE", "al", "a" * 33, "alice\u200b", "al ice", "al/ice", ""])
def test_username_outside_the_allowed_alphabet_is_refused(api: Api, username):
    response = api.admin_post("/api/v1/admin/users", {"username": username})
    assert error_code(response) == "VALIDATION_ERROR"


def test_another_users_token_cannot_cancel_or_read_an_order(api: Api, market):
    asset_id, owner = market
    order = api.place(owner, asset_id, "limit_buy", "1", "1.00")
    intruder = api.new_user()
    for response in (api.http.get(f"{ORDERS}/{order['order_id']}", headers=intruder.headers),
                     api.http.delete(f"{ORDERS}/{order['order_id']}", headers=intruder.headers)):
        assert error_code(response) == "ORDER_NOT_FOUND"
    assert api.order(owner, order["order_id"])["status"] == "confirmed"


@pytest.mark.parametrize("header", ["Bearer", "Basic dXNlcjpwYXNz", "bearer x" * 1000, "Bearer x y", "Token abc"])
def test_malformed_authorization_is_refused_with_401(api: Api, header):
    response = api.http.get("/api/v1/balances", headers={"Authorization": header})
    assert response.status_code == 401 and error_code(response) == "UNAUTHORIZED"
