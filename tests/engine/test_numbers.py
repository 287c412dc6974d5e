from decimal import Decimal

import pytest

from engine import AssetSpec, Rejected, RejectReason, format_money, parse_money


@pytest.fixture
def spec() -> AssetSpec:
    return AssetSpec.create("BTC", "0.01", "0.001")


def test_to_ticks_exact_multiple_converts_to_integer(spec):
    assert spec.to_ticks("100.25") == 10025
    assert spec.to_ticks(Decimal("0.01")) == 1


def test_to_ticks_inexact_price_is_rejected_not_rounded(spec):
    with pytest.raises(Rejected) as caught:
        spec.to_ticks("100.255")
    assert caught.value.reason is RejectReason.INVALID_TICK_SIZE


@pytest.mark.parametrize("value", ["0", "-0", "-1", "-0.00"])
def test_to_ticks_zero_or_negative_price_is_rejected(spec, value):
    with pytest.raises(Rejected) as caught:
        spec.to_ticks(value)
    assert caught.value.reason is RejectReason.INVALID_PRICE


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999999", "1e-999999", "abc", "", True])
def test_to_ticks_non_finite_or_huge_exponent_is_rejected(spec, value):
    with pytest.raises(Rejected):
        spec.to_ticks(value)


def test_to_lots_inexact_quantity_is_rejected(spec):
    assert spec.to_lots("1.5") == 1500
    with pytest.raises(Rejected) as caught:
        spec.to_lots("0.0005")
    assert caught.value.reason is RejectReason.INVALID_LOT_SIZE


def test_asset_spec_notional_not_multiple_of_money_unit_is_rejected():
    with pytest.raises(Rejected) as caught:
        AssetSpec.create("X", "0.0001", "0.00001")
    assert caught.value.reason is RejectReason.INVALID_ASSET_SPEC


def test_asset_spec_notional_is_exact_integer_money(spec):
    # 0.01 USD × 0.001 = 0.00001 USD = 1000 money units
    assert spec.money_per_tick_lot == 1000
    assert spec.notional(10025, 1500) == 10025 * 1500 * 1000


def test_format_price_and_quantity_render_plain_decimals(spec):
    assert spec.format_price(10025) == "100.25"
    assert spec.format_price(10000) == "100"
    assert spec.format_quantity(1) == "0.001"
    assert spec.format_quantity(1500) == "1.5"


def test_money_round_trips_exactly():
    assert parse_money("100.25") == 10_025_000_000
    assert format_money(10_025_000_000) == "100.25"
    assert format_money(1) == "0.00000001"
    assert format_money(0) == "0"


def test_parse_money_more_than_eight_decimals_is_rejected():
    with pytest.raises(Rejected) as caught:
        parse_money("0.000000001")
    assert caught.value.reason is RejectReason.INVALID_AMOUNT


def test_asset_spec_record_round_trips(spec):
    assert AssetSpec.from_record(spec.to_record()) == spec
