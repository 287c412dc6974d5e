"""Balance, transaction and portfolio models."""

from __future__ import annotations

from pydantic import BaseModel

from gateway.models.common import DecimalString


class AssetBalanceData(BaseModel):
    username: str
    asset_id: str
    quantity: DecimalString
    available: DecimalString
    locked: DecimalString
    current_price: DecimalString
    market_value: DecimalString
    last_updated: str | None


class AssetBalancesData(BaseModel):
    username: str
    asset_balances: list[AssetBalanceData]
    total_count: int
    total_market_value: DecimalString
    has_more: bool


class AssetTransactionData(BaseModel):
    transaction_id: str
    username: str
    asset_id: str
    transaction_type: str
    quantity: DecimalString
    price: DecimalString
    total_amount: DecimalString
    order_id: str
    status: str
    timestamp: str


class AssetTransactionHistoryData(BaseModel):
    username: str
    asset_id: str
    transactions: list[AssetTransactionData]
    total_count: int
    has_more: bool


class PortfolioAsset(BaseModel):
    asset_id: str
    quantity: DecimalString
    current_price: DecimalString
    market_value: DecimalString
    percentage: DecimalString
    last_updated: str | None


class PortfolioData(BaseModel):
    username: str
    usd_balance: DecimalString
    total_asset_value: DecimalString
    total_portfolio_value: DecimalString
    asset_count: int
    assets: list[PortfolioAsset]
    last_updated: str
