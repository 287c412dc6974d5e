"""The OpenAPI document says what the service does: 405s name every method, order rules keep
their error codes, dates are ISO 8601 only, the document's examples are valid and accepted.

test_fuzz.py draws cases from the document; these are the hand-picked ones it could miss.
"""

from __future__ import annotations

import jsonschema
import pytest

from tests.e2e.api import assert_envelope, assert_error

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def document(api) -> dict:
    response = api.http.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture(scope="module")
def trader(api):
    asset_id = api.new_asset(tick_size="0.01", lot_size="0.1")
    return api.new_user(usd="100000", assets={asset_id: "1000"}), asset_id


def _resolve(document: dict, schema: dict) -> dict:
    """A component schema with its references inlined (for jsonschema)."""
    return {**schema, "components": document["components"]}


def test_every_path_answers_405_with_all_its_documented_methods(api, document):
    for path, operations in document["paths"].items():
        declared = {method.upper() for method in operations if method in HTTP_METHODS}
        url = path.replace("{order_id}", "1").replace("{asset_id}", "USD")
        # Methods no route serves: GET and PATCH /orders/batch reach /orders/{order_id}'s routes.
        served_there = ({method.upper() for method in document["paths"]["/api/v1/orders/{order_id}"]}
                        if path == "/api/v1/orders/batch" else set())
        for method in ("OPTIONS", *({"PUT", "PATCH"} - declared - served_there)):
            response = api.http.request(method, url)
            assert response.status_code == 405, (method, path, response.text)
            allowed = {name.strip() for name in response.headers["allow"].split(",")}
            assert allowed - {"HEAD"} == declared, (method, path, response.headers["allow"])
            assert_error(response, 405, "METHOD_NOT_ALLOWED")


ORDER_RULES = {
    "market_with_price": (dict(order_type="market_buy", price="10"), "INVALID_ORDER"),
    "market_sell_with_price": (dict(order_type="market_sell", price="10"), "INVALID_ORDER"),
    "limit_without_price": (dict(price=None), "INVALID_ORDER"),
    "market_gtc": (dict(order_type="market_buy", price=None, time_in_force="gtc"), "INVALID_ORDER"),
    "market_post_only": (dict(order_type="market_sell", price=None, post_only=True), "INVALID_ORDER"),
    "post_only_ioc": (dict(post_only=True, time_in_force="ioc"), "INVALID_ORDER"),
    "post_only_fok": (dict(post_only=True, time_in_force="fok"), "INVALID_ORDER"),
    "quantity_zero": (dict(quantity="0"), "INVALID_QUANTITY"),
    "quantity_float_zero": (dict(quantity=0.0), "INVALID_QUANTITY"),
    "quantity_above_maximum": (dict(quantity="1000000.1"), "INVALID_QUANTITY"),
    "price_zero": (dict(price="0"), "INVALID_PRICE"),
    "order_type_unknown": (dict(order_type="stop"), "VALIDATION_ERROR"),
    "quantity_not_a_decimal": (dict(quantity="1,5"), "VALIDATION_ERROR"),
}


@pytest.mark.parametrize("changes, code", ORDER_RULES.values(), ids=ORDER_RULES.keys())
def test_order_breaking_a_rule_of_the_union_answers_its_api_code(api, trader, changes, code):
    user, asset_id = trader
    body = {"asset_id": asset_id, "order_type": "limit_buy", "quantity": "1", "price": "10", **changes}
    body = {key: value for key, value in body.items() if value is not None}
    assert_error(api.post("/api/v1/orders", user, json=body), 422, code)


def test_batch_item_breaking_a_rule_fails_alone_with_its_code(api, trader):
    user, asset_id = trader
    orders = [{"asset_id": asset_id, "order_type": "market_buy", "quantity": "1", "price": "10"},
              {"asset_id": asset_id, "order_type": "limit_buy", "quantity": "0", "price": "10"},
              {"asset_id": asset_id, "order_type": "limit_buy", "quantity": "1", "price": "1"}]
    results = assert_envelope(api.post("/api/v1/orders/batch", user, json={"orders": orders}), 200, True)["results"]
    assert [result["success"] for result in results] == [False, False, True]
    assert [result["error"]["code"] for result in results[:2]] == ["INVALID_ORDER", "INVALID_QUANTITY"]


@pytest.mark.parametrize("path", ["/api/v1/orders", "/api/v1/transactions/{asset_id}"])
@pytest.mark.parametrize("name", ["start_date", "end_date"])
def test_list_date_that_is_a_number_answers_validation_error(api, trader, path, name):
    user, asset_id = trader
    for value in ("0.5", "1700000000", "yesterday"):
        response = api.get(path.format(asset_id=asset_id), user, params={name: value})
        assert_error(response, 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("value", ["2024-05-01T12:00:00Z", "2024-05-01T14:00:00+02:00", "2024-05-01T12:00:00.5",
                                   "2024-05-01 12:00"])
def test_list_date_in_iso_8601_is_accepted(api, trader, value):
    user, asset_id = trader
    assert assert_envelope(api.get("/api/v1/orders", user, params={"start_date": value}), 200, True) is not None
    assert_envelope(api.get(f"/api/v1/transactions/{asset_id}", user, params={"end_date": value}), 200, True)


def test_order_examples_of_the_document_are_valid_and_accepted(api, trader, document):
    user, asset_id = trader
    schemas = document["components"]["schemas"]
    examples = [example for name in ("LimitOrderRequest", "MarketOrderRequest") for example in schemas[name]["examples"]]
    assert len(examples) >= 3
    order_schema = _resolve(document, {"$ref": "#/components/schemas/OrderCreateRequest"})
    for example in examples:
        jsonschema.validate(example, order_schema)
        placed = assert_envelope(api.post("/api/v1/orders", user, json={**example, "asset_id": asset_id,
                                                                         "client_order_id": None}), 201, True)
        assert placed["order_type"] == example["order_type"]


def test_order_schema_refuses_what_the_service_refuses(document):
    order_schema = _resolve(document, {"$ref": "#/components/schemas/OrderCreateRequest"})
    refused = [{"order_type": "limit_buy", "quantity": 0.0, "asset_id": "A"},
               {"order_type": "limit_buy", "quantity": "1", "asset_id": "A"},
               {"order_type": "market_buy", "quantity": "1", "price": "1", "asset_id": "A"},
               {"order_type": "limit_buy", "quantity": "1", "price": "1", "asset_id": "A", "post_only": True,
                "time_in_force": "ioc"},
               {"order_type": "market_sell", "quantity": "1", "asset_id": "A", "time_in_force": "gtc"},
               {"order_type": "limit_sell", "quantity": "0", "price": "1", "asset_id": "A"},
               {"order_type": "limit_sell", "quantity": "1000001", "price": "1", "asset_id": "A"},
               {"order_type": "limit_sell", "quantity": "1", "price": "-1", "asset_id": "A"}]
    for body in refused:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(body, order_schema)


def test_every_operation_documents_its_error_codes_in_the_envelope(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/health"):
                continue
            errors = {status: answer for status, answer in operation["responses"].items() if status >= "400"}
            assert "503" in errors, (method, path)
            if operation.get("security"):
                assert {"401", "403"} <= errors.keys(), (method, path)
            for status, answer in errors.items():
                schema = answer["content"]["application/json"]["schema"]
                assert schema["allOf"][0] == {"$ref": "#/components/schemas/ErrorEnvelope"}, (method, path, status)
                assert schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"], (method, path)
