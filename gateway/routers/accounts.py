"""The caller's balances, transactions and portfolio."""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from engine import USD, Balance
from engine.numbers import MONEY_UNIT
from gateway.deps import ReadingUser, Service
from gateway.exact_json import ExactJSONRoute
from gateway.errors import ApiError
from gateway.models.accounts import (
    AssetBalanceData, AssetBalancesData, AssetTransactionHistoryData, PortfolioData,
)
from gateway.models.common import Envelope, IsoDateTime
from gateway.models.errors import USER_AUTH, error_responses
from gateway.responses import ok, utc_now_iso
from gateway.times import micros_or_none
from gateway.views import current_price, decimal, format_fraction, iso_or_none, transaction_data

router = APIRouter(prefix="/api/v1", tags=["accounts"], route_class=ExactJSONRoute)


async def _holdings(service, username: str) -> list[dict]:
    """Every balance row of the user, USD first, with prices and exact values as Fractions."""
    balances = await service.client.balances(username)
    summaries = await service.client.summaries()
    rows = []
    usd = balances.get(USD, Balance(0, 0, 0))
    rows.append({"asset_id": USD, "available": usd.available * MONEY_UNIT, "locked": usd.held * MONEY_UNIT,
                 "price": Fraction(1), "updated": usd.updated_at})
    for asset_id in sorted(balances):
        if asset_id == USD:
            continue
        spec = await service.spec(asset_id)
        balance = balances[asset_id]
        rows.append({"asset_id": asset_id, "available": balance.available * spec.lot_size,
                     "locked": balance.held * spec.lot_size, "price": current_price(spec, summaries.get(asset_id)),
                     "updated": balance.updated_at})
    return rows


def _balance_row(username: str, row: dict) -> dict:
    quantity = row["available"] + row["locked"]
    return {"username": username, "asset_id": row["asset_id"], "quantity": decimal(quantity),
            "available": decimal(row["available"]), "locked": decimal(row["locked"]),
            "current_price": decimal(row["price"]), "market_value": decimal(quantity * row["price"]),
            "last_updated": iso_or_none(row["updated"])}


@router.get("/balances", response_model=Envelope[AssetBalancesData],
            responses=error_responses(USER_AUTH, "VALIDATION_ERROR"))
async def list_balances(username: ReadingUser, service: Service,
                        limit: Annotated[int, Query(ge=1, le=100)] = 100,
                        offset: Annotated[int, Query(ge=0)] = 0):
    """Every balance of the caller, USD first."""
    rows = await _holdings(service, username)
    total = sum((row["available"] + row["locked"]) * row["price"] for row in rows)
    page = rows[offset:offset + limit]
    return ok({"username": username, "asset_balances": [_balance_row(username, row) for row in page],
               "total_count": len(rows), "total_market_value": decimal(Fraction(total)),
               "has_more": offset + limit < len(rows)})


@router.get("/balances/{asset_id}", response_model=Envelope[AssetBalanceData],
            responses=error_responses(USER_AUTH, "VALIDATION_ERROR", "ASSET_NOT_FOUND"))
async def get_balance(asset_id: str, username: ReadingUser, service: Service):
    """One balance of the caller; an asset never held answers zeros."""
    if asset_id != USD and await service.spec(asset_id) is None:
        raise ApiError(404, "ASSET_NOT_FOUND", "Asset not found", details=asset_id)
    rows = {row["asset_id"]: row for row in await _holdings(service, username)}
    row = rows.get(asset_id)
    if row is None:
        spec = await service.spec(asset_id)
        summaries = await service.client.summaries()
        row = {"asset_id": asset_id, "available": Fraction(0), "locked": Fraction(0),
               "price": current_price(spec, summaries.get(asset_id)), "updated": 0}
    return ok(_balance_row(username, row))


@router.get("/transactions/{asset_id}", response_model=Envelope[AssetTransactionHistoryData],
            responses=error_responses(USER_AUTH, "VALIDATION_ERROR", "ASSET_NOT_FOUND"))
async def list_transactions(
    asset_id: str, username: ReadingUser, service: Service,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    transaction_type: Literal["BUY", "SELL"] | None = None,
    start_date: IsoDateTime | None = None,
    end_date: IsoDateTime | None = None,
):
    """The caller's fills in one asset, newest first."""
    spec = await service.spec(asset_id)
    if spec is None:
        raise ApiError(404, "ASSET_NOT_FOUND", "Asset not found", details=asset_id)
    filters = {"transaction_type": transaction_type, "start": micros_or_none(start_date),
               "end": micros_or_none(end_date)}
    selected = await service.client.transactions(username, asset_id, filters, limit, offset)
    return ok({"username": username, "asset_id": asset_id,
               "transactions": [transaction_data(item, spec) for item in selected.items],
               "total_count": selected.total_count, "has_more": selected.has_more})


@router.get("/portfolio", response_model=Envelope[PortfolioData], responses=error_responses(USER_AUTH))
async def portfolio(username: ReadingUser, service: Service):
    """The caller's USD, holdings at current prices, and each one's share of the whole."""
    usd_row, *asset_rows = await _holdings(service, username)
    usd = usd_row["available"] + usd_row["locked"]
    held = [row for row in asset_rows if row["available"] + row["locked"] > 0]
    values = [(row["available"] + row["locked"]) * row["price"] for row in held]
    total_assets = sum(values, Fraction(0))
    total = usd + total_assets
    assets = []
    for row, value in zip(held, values):
        quantity = row["available"] + row["locked"]
        share = value * 100 / total if total else Fraction(0)
        assets.append({"asset_id": row["asset_id"], "quantity": decimal(quantity),
                       "current_price": decimal(row["price"]), "market_value": decimal(value),
                       "percentage": format_fraction(share, 4), "last_updated": iso_or_none(row["updated"])})
    return ok({"username": username, "usd_balance": decimal(usd), "total_asset_value": decimal(total_assets),
               "total_portfolio_value": decimal(total), "asset_count": len(assets), "assets": assets,
               "last_updated": utc_now_iso()})



