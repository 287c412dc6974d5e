"""Typed requests and answers of the Order Service API, named as the components of its
`/openapi.json` (the project's tests compare each model's fields with its component).

Decimals are `Decimal` here and travel as JSON strings, as the API writes them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

# A decimal sent as a string ("100.25"): exact, never through a float.
DecimalText = Annotated[Decimal, PlainSerializer(lambda value: format(value, "f"), return_type=str)]
OrderType = Literal["market_buy", "market_sell", "limit_buy", "limit_sell"]
TimeInForce = Literal["gtc", "ioc", "fok"]
OrderStatus = Literal["pending", "confirmed", "processing", "completed", "cancelled", "failed"]
StopKind = Literal["stop_loss", "take_profit"]


class _Answer(BaseModel):
    # A newer service may answer more fields; an older client keeps working.
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- requests ---------------------------------------------------------------

class LimitOrderRequest(_Request):
    """A limit order: a price; gtc (default), ioc or fok; post_only only with gtc."""

    asset_id: str
    order_type: Literal["limit_buy", "limit_sell"]
    quantity: DecimalText
    price: DecimalText
    time_in_force: TimeInForce | None = None
    post_only: bool | None = None
    client_order_id: str | None = None
    description: str | None = None
    stop_price: DecimalText | None = None  # with stop_kind: a stop order, waiting (pending) for its trigger
    stop_kind: StopKind | None = None


class MarketOrderRequest(_Request):
    """A market order: no price; ioc (default) or fok."""

    asset_id: str
    order_type: Literal["market_buy", "market_sell"]
    quantity: DecimalText
    price: None = None  # a market order takes no price
    time_in_force: Literal["ioc", "fok"] | None = None
    post_only: Literal[False] | None = None
    client_order_id: str | None = None
    description: str | None = None
    stop_price: DecimalText | None = None  # a stop market_sell (a market_buy takes no stop)
    stop_kind: StopKind | None = None


# One variant per kind of order, as the API's OrderCreateRequest (a stop is one of them with stop fields).
OrderRequest = Annotated[Union[LimitOrderRequest, MarketOrderRequest], Field(discriminator="order_type")]


class OrderAmendRequest(_Request):
    """A change to an open order or waiting stop: a lower total quantity, a new price, or both."""

    quantity: DecimalText | None = None
    price: DecimalText | None = None


class UserCreateRequest(_Request):
    username: str


class AssetCreateRequest(_Request):
    asset_id: str
    name: str
    tick_size: DecimalText
    lot_size: DecimalText


class BalanceChangeRequest(_Request):
    username: str
    asset_id: str
    amount: DecimalText


# ---- answers ----------------------------------------------------------------

class OrderData(_Answer):
    order_id: str
    client_order_id: str | None
    username: str
    asset_id: str
    order_type: OrderType
    time_in_force: TimeInForce
    post_only: bool
    status: OrderStatus
    quantity: Decimal
    price: Decimal
    filled_quantity: Decimal
    remaining_quantity: Decimal
    average_price: Decimal | None
    total_amount: Decimal
    reason: str | None
    description: str | None
    created_at: str
    updated_at: str
    stop_price: Decimal | None
    stop_kind: StopKind | None
    triggered_at: str | None


class CancelAllData(_Answer):
    cancelled: list[OrderData]
    count: int


class OrderListData(_Answer):
    username: str
    orders: list[OrderData]
    total_count: int
    has_more: bool


class BatchItemError(_Answer):
    code: str
    message: str
    details: Any = None


class OrderBatchItem(_Answer):
    success: bool
    data: OrderData | None = None
    error: BatchItemError | None = None


class OrderBatchData(_Answer):
    results: list[OrderBatchItem]


class AssetBalanceData(_Answer):
    username: str
    asset_id: str
    quantity: Decimal
    available: Decimal
    locked: Decimal
    current_price: Decimal
    market_value: Decimal
    last_updated: str | None


class AssetBalancesData(_Answer):
    username: str
    asset_balances: list[AssetBalanceData]
    total_count: int
    total_market_value: Decimal
    has_more: bool


class AssetTransactionData(_Answer):
    transaction_id: str
    username: str
    asset_id: str
    transaction_type: str
    quantity: Decimal
    price: Decimal
    total_amount: Decimal
    order_id: str
    status: str
    timestamp: str


class AssetTransactionHistoryData(_Answer):
    username: str
    asset_id: str
    transactions: list[AssetTransactionData]
    total_count: int
    has_more: bool


class PortfolioAsset(_Answer):
    asset_id: str
    quantity: Decimal
    current_price: Decimal
    market_value: Decimal
    percentage: Decimal
    last_updated: str | None


class PortfolioData(_Answer):
    username: str
    usd_balance: Decimal
    total_asset_value: Decimal
    total_portfolio_value: Decimal
    asset_count: int
    assets: list[PortfolioAsset]
    last_updated: str


class AssetData(_Answer):
    asset_id: str
    name: str
    tick_size: Decimal
    lot_size: Decimal
    last_price: Decimal | None
    best_bid: Decimal | None
    best_ask: Decimal | None


class BookLevel(_Answer):
    price: Decimal
    quantity: Decimal
    order_count: int


class OrderBookData(_Answer):
    asset_id: str
    sequence: int
    bids: list[BookLevel]
    asks: list[BookLevel]


class TradeData(_Answer):
    trade_id: str
    price: Decimal
    quantity: Decimal
    taker_side: str
    timestamp: str


class UserCreatedData(_Answer):
    username: str
    key_id: str
    api_key: str


class BalanceChangeData(_Answer):
    username: str
    asset_id: str
    quantity: Decimal
    available: Decimal
    locked: Decimal


class HealthReadyData(_Answer):
    status: Literal["ready", "not_ready"]
    timestamp: str
    database: str
    external_services: dict[str, str]


class ErrorBody(_Answer):
    code: str
    details: Any = None


class ErrorEnvelope(_Answer):
    success: bool = False
    message: str
    data: Any = None
    timestamp: str
    error: ErrorBody
