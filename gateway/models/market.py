"""Public market data models."""

from __future__ import annotations

from pydantic import BaseModel

from gateway.models.common import DecimalString


class AssetData(BaseModel):
    asset_id: str
    name: str
    tick_size: DecimalString
    lot_size: DecimalString
    last_price: DecimalString | None
    best_bid: DecimalString | None
    best_ask: DecimalString | None


class BookLevel(BaseModel):
    price: DecimalString
    quantity: DecimalString
    order_count: int


class OrderBookData(BaseModel):
    asset_id: str
    sequence: int
    bids: list[BookLevel]
    asks: list[BookLevel]


class TradeData(BaseModel):
    trade_id: str
    price: DecimalString
    quantity: DecimalString
    taker_side: str
    timestamp: str


class CandleData(BaseModel):
    open_time: str
    open: DecimalString
    high: DecimalString
    low: DecimalString
    close: DecimalString
    volume: DecimalString
    trade_count: int


class CandlesData(BaseModel):
    asset_id: str
    interval: str
    candles: list[CandleData]
