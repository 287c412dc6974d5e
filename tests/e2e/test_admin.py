"""Admin routes: users with API keys, assets with exact sizes, deposits and withdrawals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.e2e.api import D, assert_envelope, assert_error, unique_suffix


def _create_user(api, username):
    return api.admin_post("/api/v1/admin/users", {"username": username})


def _create_asset(api, asset_id, tick_size="0.01", lot_size="1", name="An asset"):
    return api.admin_post("/api/v1/admin/assets", {"asset_id": asset_id, "name": name,
                                                   "tick_size": tick_size, "lot_size": lot_size})


def _adjust(api, kind, username, asset_id, amount):
    return api.admin_post(f"/api/v1/admin/{kind}", {"username": username, "asset_id": asset_id, "amount": amount})


def test_create_user_answers_201_with_an_api_key_that_authenticates(api):
    username = f"alice.{unique_suffix()}"
    data = assert_envelope(_create_user(api, username), 201, True)
    assert data["username"] == username
    assert isinstance(data["api_key"], str) and len(data["api_key"]) >= 16
    response = api.http.get("/api/v1/balances", headers={"Authorization": f"Bearer {data['api_key']}"})
    assert assert_envelope(response, 200, True)["username"] == username


def test_create_users_answers_distinct_api_keys(api):
    first, second = api.new_user(), api.new_user()
    assert first.api_key != second.api_key


def test_create_existing_user_answers_409_user_exists(api):
    username = f"bob_{unique_suffix()}"
    assert_envelope(_create_user(api, username), 201, True)
    assert_error(_create_user(api, username), 409, "USER_EXISTS")


@pytest.mark.parametrize("username", [f"abc{unique_suffix()}"[:3], "a" * 26 + unique_suffix()[:6]])
def test_create_user_with_3_or_32_characters_answers_201(api, username):
    assert len(username) in (3, 32)
    assert_envelope(_create_user(api, username), 201, True)


@pytest.mark.parametrize("username", ["ab", "x" * 33, "Upper", "with space", "semi;colon", "ünï", "", None, 12345])
def test_create_user_with_invalid_username_answers_422(api, username):
    assert_error(_create_user(api, username), 422)


def test_create_asset_answers_201_with_its_definition(api):
    asset_id = f"A{unique_suffix().upper()}"[:10]
    data = assert_envelope(_create_asset(api, asset_id, tick_size="0.05", lot_size="0.001", name="Acme"), 201, True)
    assert data["asset_id"] == asset_id and data["name"] == "Acme"
    assert D(data["tick_size"]) == Decimal("0.05") and D(data["lot_size"]) == Decimal("0.001")
    listed = api.asset(asset_id)
    assert D(listed["tick_size"]) == Decimal("0.05") and D(listed["lot_size"]) == Decimal("0.001")


def test_create_existing_asset_answers_409_asset_exists(api):
    asset_id = api.new_asset()
    assert_error(_create_asset(api, asset_id), 409, "ASSET_EXISTS")


@pytest.mark.parametrize("asset_id", ["USD", "abc", "A" * 11, "", "A-B", "A B", "Ä"])
def test_create_asset_with_invalid_id_answers_422(api, asset_id):
    assert_error(_create_asset(api, asset_id), 422)


def test_create_asset_with_ten_character_id_answers_201(api):
    asset_id = f"Z{unique_suffix().upper()}0000000000"[:10]
    assert_envelope(_create_asset(api, asset_id), 201, True)


@pytest.mark.parametrize(("tick_size", "lot_size"), [("0.0001", "0.00001"), ("0.000000001", "1"),
                                                     ("0.00000003", "0.5")])
def test_create_asset_with_tick_times_lot_not_a_multiple_of_money_unit_answers_422(api, tick_size, lot_size):
    asset_id = f"B{unique_suffix().upper()}"[:10]
    assert_error(_create_asset(api, asset_id, tick_size, lot_size), 422)
    assert_error(api.get(f"/api/v1/assets/{asset_id}"), 404, "ASSET_NOT_FOUND")


def test_create_asset_with_tiny_tick_whose_product_with_lot_is_exact_answers_201(api):
    asset_id = f"C{unique_suffix().upper()}"[:10]
    data = assert_envelope(_create_asset(api, asset_id, "0.000000001", "10"), 201, True)
    assert D(data["tick_size"]) == Decimal("0.000000001")


@pytest.mark.parametrize(("tick_size", "lot_size"), [("0", "1"), ("0.01", "0"), ("-0.01", "1"), ("NaN", "1"),
                                                     ("0.01", "Infinity"), ("abc", "1")])
def test_create_asset_with_invalid_sizes_answers_422(api, tick_size, lot_size):
    assert_error(_create_asset(api, f"D{unique_suffix().upper()}"[:10], tick_size, lot_size), 422)


def test_deposit_answers_201_with_the_balance_after_it(api):
    user = api.new_user()
    first = assert_envelope(_adjust(api, "deposits", user.username, "USD", "100.5"), 201, True)
    assert D(first["available"]) == Decimal("100.5")
    second = assert_envelope(_adjust(api, "deposits", user.username, "USD", 20), 201, True)
    assert D(second["available"]) == Decimal("120.5")
    assert api.amounts(user, "USD") == (Decimal("120.5"), Decimal(0))


def test_deposit_of_an_asset_in_lots_answers_201(api):
    asset_id = api.new_asset(lot_size="0.5")
    user = api.new_user()
    data = assert_envelope(_adjust(api, "deposits", user.username, asset_id, "2.5"), 201, True)
    assert D(data["available"]) == Decimal("2.5")


def test_deposit_of_usd_with_nine_decimals_answers_422_and_credits_nothing(api):
    user = api.new_user(usd="1")
    assert_error(_adjust(api, "deposits", user.username, "USD", "0.000000001"), 422)
    assert api.amounts(user, "USD") == (Decimal(1), Decimal(0))


def test_deposit_of_usd_with_eight_decimals_answers_201(api):
    user = api.new_user()
    data = assert_envelope(_adjust(api, "deposits", user.username, "USD", "0.00000001"), 201, True)
    assert D(data["available"]) == Decimal("0.00000001")


def test_deposit_of_asset_not_a_multiple_of_lot_answers_422(api):
    asset_id = api.new_asset(lot_size="1")
    user = api.new_user()
    assert_error(_adjust(api, "deposits", user.username, asset_id, "1.5"), 422)
    assert api.amounts(user, asset_id) == (Decimal(0), Decimal(0))


@pytest.mark.parametrize("amount", ["0", "-5", "NaN", "Infinity", "1e999999", "abc", None])
def test_deposit_of_invalid_amount_answers_422(api, amount):
    user = api.new_user()
    assert_error(_adjust(api, "deposits", user.username, "USD", amount), 422)
    assert api.amounts(user, "USD") == (Decimal(0), Decimal(0))


def test_deposits_past_the_largest_balance_answer_422_and_the_account_keeps_working(api):
    # 2**63 - 1 money units is 92,233,720,368.54775807 USD: nine deposits of the largest amount fit, a tenth not.
    user = api.new_user()
    for _ in range(9):
        assert_envelope(_adjust(api, "deposits", user.username, "USD", "10000000000"), 201, True)
    refused = assert_error(_adjust(api, "deposits", user.username, "USD", "10000000000"), 422, "INVALID_AMOUNT")
    assert "92233720368.54775807" in str(refused["error"]["details"])
    assert api.amounts(user, "USD") == (Decimal(90_000_000_000), Decimal(0))
    top_up = Decimal("2233720368.54775807")  # exactly to the largest balance
    assert_envelope(_adjust(api, "deposits", user.username, "USD", str(top_up)), 201, True)
    assert_error(_adjust(api, "deposits", user.username, "USD", "0.00000001"), 422, "INVALID_AMOUNT")
    assert_envelope(_adjust(api, "withdrawals", user.username, "USD", "1"), 201, True)
    assert api.amounts(user, "USD") == (Decimal("92233720367.54775807"), Decimal(0))


def test_deposit_to_unknown_user_answers_an_error(api):
    response = _adjust(api, "deposits", f"ghost{unique_suffix()}", "USD", "10")
    assert response.status_code in (404, 422), response.text
    assert_error(response, response.status_code)


def test_deposit_of_unlisted_asset_answers_an_error(api):
    user = api.new_user()
    response = _adjust(api, "deposits", user.username, "NOSUCH0", "10")
    assert response.status_code in (404, 422), response.text
    assert_error(response, response.status_code)


def test_withdrawal_answers_201_with_the_balance_after_it(api):
    user = api.new_user(usd="100")
    data = assert_envelope(_adjust(api, "withdrawals", user.username, "USD", "30.25"), 201, True)
    assert D(data["available"]) == Decimal("69.75")
    assert api.amounts(user, "USD") == (Decimal("69.75"), Decimal(0))


def test_withdrawal_beyond_available_answers_422_insufficient_balance(api):
    user = api.new_user(usd="100")
    assert_error(_adjust(api, "withdrawals", user.username, "USD", "100.01"), 422, "INSUFFICIENT_BALANCE")
    assert api.amounts(user, "USD") == (Decimal(100), Decimal(0))


def test_withdrawal_of_held_funds_answers_422_insufficient_balance(api):
    asset_id = api.new_asset()
    user = api.new_user(usd="100", assets={asset_id: 10})
    api.place(user, asset_id, "limit_buy", 6, "10")
    api.place(user, asset_id, "limit_sell", 4, "20")
    assert_error(_adjust(api, "withdrawals", user.username, "USD", "50"), 422, "INSUFFICIENT_BALANCE")
    assert_error(_adjust(api, "withdrawals", user.username, asset_id, "7"), 422, "INSUFFICIENT_BALANCE")
    assert api.amounts(user, "USD") == (Decimal(40), Decimal(60))
    assert api.amounts(user, asset_id) == (Decimal(6), Decimal(4))
    assert_envelope(_adjust(api, "withdrawals", user.username, asset_id, "6"), 201, True)
    assert api.amounts(user, asset_id) == (Decimal(0), Decimal(4))


def test_withdrawal_of_asset_not_a_multiple_of_lot_answers_422(api):
    asset_id = api.new_asset(lot_size="1")
    user = api.new_user(assets={asset_id: 5})
    assert_error(_adjust(api, "withdrawals", user.username, asset_id, "0.5"), 422)
    assert api.amounts(user, asset_id) == (Decimal(5), Decimal(0))
