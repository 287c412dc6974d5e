"""Admin models: users, assets, deposits and withdrawals."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gateway.models.common import DecimalInput, DecimalString


class UserCreateRequest(BaseModel):
    username: str = Field(pattern=r"^[a-z0-9_.-]{3,32}$")


class UserCreatedData(BaseModel):
    username: str
    api_key: str


class AssetCreateRequest(BaseModel):
    asset_id: str = Field(pattern=r"^[A-Z0-9]{1,10}$")
    name: str = Field(min_length=1, max_length=100)
    tick_size: DecimalInput
    lot_size: DecimalInput


class BalanceChangeRequest(BaseModel):
    username: str = Field(pattern=r"^[a-z0-9_.-]{3,32}$")
    asset_id: str = Field(pattern=r"^[A-Z0-9]{1,10}$")
    amount: DecimalInput


class BalanceChangeData(BaseModel):
    username: str
    asset_id: str
    quantity: DecimalString
    available: DecimalString
    locked: DecimalString
