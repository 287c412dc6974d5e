"""Admin models: users, assets, deposits and withdrawals."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gateway.models.common import Amount, DecimalInput, DecimalString


class UserCreateRequest(BaseModel):
    username: str = Field(pattern=r"^[a-z0-9_.-]{3,32}$")


class UserCreatedData(BaseModel):
    username: str
    key_id: str = Field(description="the key's public id (at most 16 characters)")
    api_key: str = Field(description="shown only in this answer")


class AssetCreateRequest(BaseModel):
    asset_id: str = Field(pattern=r"^[A-Z0-9]{1,10}$", json_schema_extra={"not": {"const": "USD"}},
                          description="USD is the built-in quote currency (422 INVALID_ASSET)")
    name: str = Field(min_length=1, max_length=100)
    tick_size: DecimalInput = Field(description="tick_size × lot_size must be a multiple of 0.00000001 "
                                                "(else 422 INVALID_ASSET_SPEC)")
    lot_size: DecimalInput


class BalanceChangeRequest(BaseModel):
    username: str = Field(pattern=r"^[a-z0-9_.-]{3,32}$")
    asset_id: str = Field(pattern=r"^[A-Z0-9]{1,10}$", description="a listed asset or USD")
    amount: Amount = Field(description="at most 8 decimal places for USD, a multiple of lot_size for an asset")


class BalanceChangeData(BaseModel):
    username: str
    asset_id: str
    quantity: DecimalString
    available: DecimalString
    locked: DecimalString
