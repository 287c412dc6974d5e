"""Admin: users and their API keys, assets, deposits and withdrawals."""

from __future__ import annotations

import secrets
import time

from fastapi import APIRouter

from actors.messages import AdjustBalance
from engine import USD, AssetSpec, format_money, parse_money
from engine.numbers import MAX_UNITS
from gateway.deps import Admin, Service
from gateway.errors import ApiError, within_deadline
from gateway.exact_json import ExactJSONRoute
from gateway.models.admin import (
    AssetCreateRequest, BalanceChangeData, BalanceChangeRequest, UserCreatedData, UserCreateRequest,
)
from gateway.models.common import Envelope
from gateway.models.errors import ADMIN_AUTH, BODY, error_responses
from gateway.models.market import AssetData
from gateway.responses import ok
from gateway.runtime import hash_key
from gateway.views import asset_data

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], route_class=ExactJSONRoute)
_BALANCE_CHANGE = (ADMIN_AUTH, BODY, "USER_NOT_FOUND", "UNKNOWN_ASSET", "INVALID_AMOUNT", "INVALID_LOT_SIZE")


@router.post("/users", status_code=201, response_model=Envelope[UserCreatedData],
             responses=error_responses(ADMIN_AUTH, BODY, "USER_EXISTS"))
async def create_user(body: UserCreateRequest, _: Admin, service: Service):
    """Create a user and its API key; the key is shown only in this answer."""
    api_key = secrets.token_urlsafe(32)
    refused, key_id = await within_deadline(
        service.client.create_user(body.username, hash_key(api_key), time.time_ns() // 1000))
    if refused:
        raise ApiError.rejected(refused, details=body.username)
    return ok({"username": body.username, "key_id": key_id, "api_key": api_key}, "User created", 201)


@router.post("/assets", status_code=201, response_model=Envelope[AssetData],
             responses=error_responses(ADMIN_AUTH, BODY, "ASSET_EXISTS", "INVALID_ASSET", "INVALID_ASSET_SPEC"))
async def create_asset(body: AssetCreateRequest, _: Admin, service: Service):
    """Define an asset that trades against USD."""
    if body.asset_id == USD:
        raise ApiError(422, "INVALID_ASSET", "USD is the built-in quote currency")
    spec = AssetSpec.create(body.asset_id, body.tick_size, body.lot_size, body.name)
    details = {"name": body.name, "tick_size": spec.format_price(1), "lot_size": spec.format_quantity(1)}
    refused = await within_deadline(service.client.create_asset(spec, time.time_ns() // 1000, details))
    if refused:
        raise ApiError.rejected(refused, details=body.asset_id)
    service.remember_asset(spec)
    return ok(asset_data(spec, None), "Asset created", 201)


@router.post("/deposits", status_code=201, response_model=Envelope[BalanceChangeData],
             responses=error_responses(*_BALANCE_CHANGE))
async def deposit(body: BalanceChangeRequest, _: Admin, service: Service):
    """Credit a user's available balance."""
    return await _change(service, body, "deposit")


@router.post("/withdrawals", status_code=201, response_model=Envelope[BalanceChangeData],
             responses=error_responses(*_BALANCE_CHANGE, "INSUFFICIENT_BALANCE"))
async def withdraw(body: BalanceChangeRequest, _: Admin, service: Service):
    """Debit a user's available balance (never what open orders hold)."""
    return await _change(service, body, "withdraw")


async def _change(service, body: BalanceChangeRequest, kind: str):
    if not await service.client.user_exists(body.username):
        raise ApiError(404, "USER_NOT_FOUND", "User not found", details=body.username)
    if body.asset_id == USD:
        amount, render = parse_money(body.amount), format_money
    else:
        spec = await service.spec(body.asset_id)
        if spec is None:
            raise ApiError.rejected("UNKNOWN_ASSET", details=body.asset_id)
        amount, render = spec.amount_to_lots(body.amount), spec.format_quantity
    if amount <= 0:
        raise ApiError(422, "INVALID_AMOUNT", "amount must be greater than 0")
    result = await within_deadline(
        service.client.adjust_balance(AdjustBalance(kind, body.username, body.asset_id, amount)))
    if result.reason == "INVALID_AMOUNT":  # the amount itself was checked above: the balance it makes
        raise ApiError.rejected(result.reason, details="the balance would be more than the most an account "
                                                       f"holds ({render(MAX_UNITS)})")
    if result.reason is not None:
        raise ApiError.rejected(result.reason)
    # Journaled before the answer; a crash between the shard's journal and this one loses the entry.
    await within_deadline(service.client.log_action(
        "admin", "deposit" if kind == "deposit" else "withdrawal", body.username,
        {"asset_id": body.asset_id, "amount": render(amount)}, time.time_ns() // 1000))
    balance = result.balance
    return ok({"username": body.username, "asset_id": body.asset_id,
               "quantity": render(balance.available + balance.held),
               "available": render(balance.available), "locked": render(balance.held)},
              "Deposit recorded" if kind == "deposit" else "Withdrawal recorded", 201)
