"""`POST /api/v1/orders` refuses what API.md forbids with 422, records nothing and holds nothing.

Decimals are read exactly from strings or JSON numbers; NaN, infinities, huge
exponents and digits beyond the asset's units are refused, never rounded.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.e2e.api import D, assert_envelope, assert_error


@pytest.fixture
def trader(api):
    """A user funded in USD and in a fresh asset (tick 0.01, lot 0.1)."""
    asset_id = api.new_asset(tick_size="0.01", lot_size="0.1")
    user = api.new_user(usd="100000", assets={asset_id: "1000"})
    return user, asset_id


def _body(asset, **changes):
    body = {"asset_id": asset, "order_type": "limit_buy", "quantity": "1", "price": "10"}
    body.update(changes)
    return {key: value for key, value in body.items() if value is not _DROP}


_DROP = object()

INVALID_BODIES = {
    "quantity_zero": dict(quantity="0"),
    "quantity_negative": dict(quantity="-1"),
    "quantity_negative_zero": dict(quantity="-0"),
    "quantity_above_maximum": dict(quantity="1000000.1"),
    "quantity_missing": dict(quantity=_DROP),
    "quantity_not_a_number": dict(quantity="ten"),
    "quantity_nan": dict(quantity="NaN"),
    "quantity_infinity": dict(quantity="Infinity"),
    "quantity_huge_exponent": dict(quantity="1e999999"),
    "quantity_too_many_digits": dict(quantity="1.00000000000000000000000000000000000000000000000000000000001"),
    "price_zero": dict(price="0"),
    "price_negative": dict(price="-10"),
    "price_negative_zero": dict(price="-0.00"),
    "price_nan": dict(price="NaN"),
    "price_negative_infinity": dict(price="-Infinity"),
    "price_huge_exponent": dict(price="1e999999"),
    "price_tiny_exponent": dict(price="1e-999999"),
    "price_missing_on_limit": dict(price=_DROP),
    "price_boolean": dict(price=True),
    "order_type_unknown": dict(order_type="stop_loss"),
    "order_type_missing": dict(order_type=_DROP),
    "time_in_force_unknown": dict(time_in_force="gtd"),
    "market_order_gtc": dict(order_type="market_buy", price=_DROP, time_in_force="gtc"),
    "market_order_post_only": dict(order_type="market_buy", price=_DROP, post_only=True),
    "post_only_ioc": dict(post_only=True, time_in_force="ioc"),
    "post_only_fok": dict(post_only=True, time_in_force="fok"),
    "client_order_id_bad_characters": dict(client_order_id="has space!"),
    "client_order_id_empty": dict(client_order_id=""),
    "client_order_id_too_long": dict(client_order_id="x" * 65),
    "description_too_long": dict(description="d" * 501),
    "asset_id_too_long": dict(asset_id="A" * 11),
    "asset_id_missing": dict(asset_id=_DROP),
}


@pytest.mark.parametrize("changes", INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_create_order_with_invalid_field_answers_422_and_records_nothing(api, trader, changes):
    user, asset_id = trader
    assert_error(api.post("/api/v1/orders", user, json=_body(asset_id, **changes)), 422)
    assert api.orders(user)["total_count"] == 0
    assert api.amounts(user, "USD") == (Decimal(100000), Decimal(0))
    assert api.amounts(user, asset_id) == (Decimal(1000), Decimal(0))


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e999999"])
def test_create_order_with_raw_json_special_number_answers_422(api, trader, raw):
    user, asset_id = trader
    content = f'{{"asset_id": "{asset_id}", "order_type": "limit_buy", "quantity": {raw}, "price": "10"}}'
    response = api.http.post("/api/v1/orders", content=content.encode(),
                             headers={**user.headers, "Content-Type": "application/json"})
    assert_error(response, 422)
    assert api.orders(user)["total_count"] == 0


@pytest.mark.parametrize("order_type", ["market_buy", "market_sell"])
def test_create_market_order_with_price_answers_422(api, trader, order_type):
    user, asset_id = trader
    assert_error(api.submit(user, asset_id, order_type, "1", "10"), 422)
    assert api.orders(user)["total_count"] == 0


@pytest.mark.parametrize("order_type", ["limit_buy", "limit_sell"])
def test_create_limit_order_without_price_answers_422(api, trader, order_type):
    user, asset_id = trader
    assert_error(api.submit(user, asset_id, order_type, "1"), 422)


@pytest.mark.parametrize("price", ["10.005", "0.001", "10.0000000001"])
def test_create_order_with_price_off_the_tick_answers_422_invalid_tick_size(api, trader, price):
    user, asset_id = trader
    assert_error(api.submit(user, asset_id, "limit_buy", "1", price), 422, "INVALID_TICK_SIZE")
    assert api.orders(user)["total_count"] == 0


@pytest.mark.parametrize("quantity", ["1.05", "0.01", "0.1000000000001"])
def test_create_order_with_quantity_off_the_lot_answers_422_invalid_lot_size(api, trader, quantity):
    user, asset_id = trader
    assert_error(api.submit(user, asset_id, "limit_sell", quantity, "10"), 422, "INVALID_LOT_SIZE")
    assert api.amounts(user, asset_id) == (Decimal(1000), Decimal(0))


def test_create_order_for_unlisted_asset_answers_422_unknown_asset(api, trader):
    user, _ = trader
    assert_error(api.submit(user, "NOSUCH2", "limit_buy", "1", "10"), 422, "UNKNOWN_ASSET")
    assert api.orders(user)["total_count"] == 0


def test_create_order_with_decimals_as_json_numbers_reads_them_exactly(api, trader):
    user, asset_id = trader
    response = api.post("/api/v1/orders", user, json={"asset_id": asset_id, "order_type": "limit_buy",
                                                      "quantity": 2.3, "price": 100.1})
    order = assert_envelope(response, 201, True)
    assert D(order["price"]) == Decimal("100.1") and D(order["quantity"]) == Decimal("2.3")
    assert api.amounts(user, "USD") == (Decimal("100000") - Decimal("230.23"), Decimal("230.23"))


def test_create_order_with_integer_json_numbers_is_accepted(api, trader):
    user, asset_id = trader
    response = api.post("/api/v1/orders", user, json={"asset_id": asset_id, "order_type": "limit_sell",
                                                      "quantity": 3, "price": 250})
    order = assert_envelope(response, 201, True)
    assert (D(order["price"]), D(order["quantity"])) == (250, 3)


def test_create_order_with_trailing_zeros_beyond_the_tick_is_accepted_exactly(api, trader):
    user, asset_id = trader
    order = api.place(user, asset_id, "limit_buy", "1.000", "10.5000")
    assert (D(order["price"]), D(order["quantity"])) == (Decimal("10.5"), 1)


def test_create_order_with_quantity_at_the_maximum_is_accepted(api):
    asset_id = api.new_asset(tick_size="0.01", lot_size="1")
    user = api.new_user(assets={asset_id: 1000000})
    order = api.place(user, asset_id, "limit_sell", "1000000", "1")
    assert D(order["quantity"]) == 1000000


def test_create_order_above_maximum_quantity_answers_422_even_when_funded(api):
    asset_id = api.new_asset(tick_size="0.01", lot_size="1")
    user = api.new_user(assets={asset_id: 1000001})
    assert_error(api.submit(user, asset_id, "limit_sell", "1000001", "1"), 422)


def test_prices_up_to_the_largest_count_of_ticks_are_held_and_above_it_answer_422_invalid_price(api):
    # 2**63 - 1 ticks of 0.01: above it the price no longer fits the journal's integers.
    asset_id = api.new_asset(tick_size="0.01", lot_size="1")
    user = api.new_user(assets={asset_id: 10})
    highest = "92233720368547758.07"
    order = api.place(user, asset_id, "limit_sell", "1", highest)
    assert D(order["price"]) == Decimal(highest)
    assert_error(api.submit(user, asset_id, "limit_sell", "1", "92233720368547758.08"), 422, "INVALID_PRICE")
    assert_error(api.submit(user, asset_id, "limit_sell", "1", "90", stop_price="92233720368547758.08",
                            stop_kind="take_profit"), 422, "INVALID_PRICE")
    amended = api.patch(f"/api/v1/orders/{order['order_id']}", user, json={"price": "92233720368547758.08"})
    assert_error(amended, 422, "INVALID_PRICE")
    assert api.order(user, order["order_id"])["price"] == order["price"]
    assert api.amounts(user, asset_id) == (Decimal(9), Decimal(1))


def test_create_order_with_64_character_client_order_id_is_accepted(api, trader):
    user, asset_id = trader
    client_order_id = "A-b_9" * 12 + "wxyz"
    assert len(client_order_id) == 64
    order = api.place(user, asset_id, "limit_buy", "1", "1", client_order_id=client_order_id,
                      description="d" * 500)
    assert order["client_order_id"] == client_order_id and order["description"] == "d" * 500


def test_create_order_with_non_object_body_answers_422(api, trader):
    user, asset_id = trader
    response = api.http.post("/api/v1/orders", content=json.dumps([1, 2, 3]).encode(),
                             headers={**user.headers, "Content-Type": "application/json"})
    assert_error(response, 422)
