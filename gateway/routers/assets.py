"""Public market data: assets, order book depth, the trade tape, candles."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from gateway.deps import Service
from gateway.exact_json import ExactJSONRoute
from gateway.errors import ApiError
from gateway.models.common import Envelope
from gateway.models.errors import PUBLIC, error_responses
from gateway.models.market import AssetData, CandlesData, OrderBookData, TradeData
from gateway.responses import iso_from_micros, ok
from gateway.views import asset_data

router = APIRouter(prefix="/api/v1/assets", tags=["market data"], route_class=ExactJSONRoute)
_ONE_ASSET = error_responses(PUBLIC, "VALIDATION_ERROR", "ASSET_NOT_FOUND")


@router.get("", response_model=Envelope[list[AssetData]], responses=error_responses(PUBLIC))
async def list_assets(service: Service):
    """Every asset with its last price and best bid and ask."""
    await service.refresh_assets()
    summaries = await service.client.summaries()
    specs = sorted(service.known_specs().values(), key=lambda spec: spec.asset_id)
    return ok([asset_data(spec, summaries.get(spec.asset_id)) for spec in specs])


async def _spec(service, asset_id: str):
    spec = await service.spec(asset_id)
    if spec is None:
        raise ApiError(404, "ASSET_NOT_FOUND", "Asset not found", details=asset_id)
    return spec


@router.get("/{asset_id}", response_model=Envelope[AssetData], responses=_ONE_ASSET)
async def get_asset(asset_id: str, service: Service):
    """One asset."""
    spec = await _spec(service, asset_id)
    summaries = await service.client.summaries()
    return ok(asset_data(spec, summaries.get(asset_id)))


@router.get("/{asset_id}/book", response_model=Envelope[OrderBookData], responses=_ONE_ASSET)
async def get_book(asset_id: str, service: Service, depth: Annotated[int, Query(ge=1, le=1000)] = 20):
    """Aggregated price levels, best first."""
    spec = await _spec(service, asset_id)
    book = await service.client.depth(asset_id, depth)

    def levels(rows):
        return [{"price": spec.format_price(level.price), "quantity": spec.format_quantity(level.quantity),
                 "order_count": level.order_count} for level in rows]

    return ok({"asset_id": asset_id, "sequence": book.sequence, "bids": levels(book.bids),
               "asks": levels(book.asks)})


@router.get("/{asset_id}/trades", response_model=Envelope[list[TradeData]], responses=_ONE_ASSET)
async def get_trades(asset_id: str, service: Service, limit: Annotated[int, Query(ge=1, le=1000)] = 50):
    """The latest trades, newest first."""
    spec = await _spec(service, asset_id)
    trades = await service.client.trades(asset_id, limit)
    return ok([{"trade_id": f"{asset_id}-{trade.trade_id}", "price": spec.format_price(trade.price),
                "quantity": spec.format_quantity(trade.quantity), "taker_side": trade.taker_side,
                "timestamp": iso_from_micros(trade.timestamp)} for trade in trades])


@router.get("/{asset_id}/candles", response_model=Envelope[CandlesData], responses=_ONE_ASSET)
async def get_candles(asset_id: str, service: Service,
                      interval: Annotated[Literal["1m", "5m", "1h", "1d"], Query()] = "1m",
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    """The newest `limit` candles of an interval, oldest first; only intervals that had trades."""
    spec = await _spec(service, asset_id)
    candles = await service.client.candles(asset_id, interval, limit) or []
    return ok({"asset_id": asset_id, "interval": interval, "candles": [{
        "open_time": iso_from_micros(candle.open_time), "open": spec.format_price(candle.open),
        "high": spec.format_price(candle.high), "low": spec.format_price(candle.low),
        "close": spec.format_price(candle.close), "volume": spec.format_quantity(candle.volume),
        "trade_count": candle.trade_count} for candle in candles]})
