"""Order models: OrderCreateRequest in, OrderData out."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from gateway.models.common import DecimalInput, DecimalString


class OrderTypeName(str, Enum):
    market_buy = "market_buy"
    market_sell = "market_sell"
    limit_buy = "limit_buy"
    limit_sell = "limit_sell"


class TimeInForceName(str, Enum):
    gtc = "gtc"
    ioc = "ioc"
    fok = "fok"


class OrderStatusName(str, Enum):
    pending = "pending"
    confirmed = "confirmed"
    processing = "processing"
    completed = "completed"
    cancelled = "cancelled"
    failed = "failed"


class OrderCreateRequest(BaseModel):
    """A new market or limit order."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"asset_id": "BTC", "order_type": "limit_buy", "quantity": "0.5", "price": "100.25"}]})

    asset_id: str = Field(min_length=1, max_length=10)
    order_type: OrderTypeName
    quantity: DecimalInput
    price: DecimalInput | None = None
    time_in_force: TimeInForceName | None = None
    post_only: StrictBool | None = None
    client_order_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = Field(default=None, max_length=500)


class OrderBatchRequest(BaseModel):
    orders: list[OrderCreateRequest] = Field(min_length=1, max_length=100)


class OrderData(BaseModel):
    order_id: str
    client_order_id: str | None
    username: str
    asset_id: str
    order_type: OrderTypeName
    time_in_force: TimeInForceName
    post_only: bool
    status: OrderStatusName
    quantity: DecimalString
    price: DecimalString
    filled_quantity: DecimalString
    remaining_quantity: DecimalString
    average_price: DecimalString | None
    total_amount: DecimalString
    reason: str | None
    description: str | None
    created_at: str
    updated_at: str


class OrderListData(BaseModel):
    username: str
    orders: list[OrderData]
    total_count: int
    has_more: bool


class OrderBatchItem(BaseModel):
    success: bool
    data: OrderData | None = None
    error: dict | None = None


class OrderBatchData(BaseModel):
    results: list[OrderBatchItem]
