"""Order models: OrderCreateRequest in, OrderData out."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, TypeAdapter

from gateway.models.common import DecimalInput, DecimalString, PlainDecimal, Quantity


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


class StopKindName(str, Enum):
    stop_loss = "stop_loss"
    take_profit = "take_profit"


_STOP_PRICE = ("a stop order: it waits (status pending) until the asset's last trade price reaches this "
               "trigger, then enters as the order it describes; with stop_kind (422 INVALID_ORDER without "
               "it); a multiple of tick_size; 422 STOP_WOULD_TRIGGER if its trigger already holds")
_STOP_KIND = ("with stop_price: a sell stop_loss and a buy take_profit trigger when the price falls to "
              "stop_price, a sell take_profit and a buy stop_loss when it rises to it")


# The stop fields' rules, in the variants' schemas (`check_order_shape` enforces them): stop_price
# and stop_kind come together or not at all; a stop limit order is gtc or ioc and not post_only; a
# stop market order is a market_sell, ioc.
_NOT_NULL = {"not": {"type": "null"}}
_NO_STOP = {"properties": {"stop_price": {"type": "null"}, "stop_kind": {"type": "null"}}}


def _with_stop(**properties: Any) -> dict:
    return {"required": ["stop_price", "stop_kind"],
            "properties": {"stop_price": _NOT_NULL, "stop_kind": _NOT_NULL, **properties}}


class _OrderFields(BaseModel):
    """The fields every order variant shares."""

    asset_id: str = Field(min_length=1, max_length=10, description="a listed asset, else 422 UNKNOWN_ASSET")
    quantity: Quantity
    client_order_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="unique per user for ever: a retry with the same id never places a second order "
                    "(409 DUPLICATE_CLIENT_ORDER_ID answers the first one)")
    description: str | None = Field(default=None, max_length=500)


class LimitOrderRequest(_OrderFields):
    """A limit order: a price; gtc (rests on the book), ioc or fok; post_only with gtc only."""

    model_config = ConfigDict(title="LimitOrderRequest", json_schema_extra={
        # post_only: true with ioc or fok is refused (422 INVALID_ORDER).
        "not": {"required": ["post_only", "time_in_force"],
                "properties": {"post_only": {"const": True}, "time_in_force": {"enum": ["ioc", "fok"]}}},
        "oneOf": [_NO_STOP, _with_stop(post_only={"enum": [False, None]},
                                       time_in_force={"enum": ["gtc", "ioc", None]})],
        "examples": [{"asset_id": "BTC", "order_type": "limit_buy", "quantity": "0.5", "price": "100.25"},
                     {"asset_id": "BTC", "order_type": "limit_sell", "quantity": "1", "price": "101",
                      "time_in_force": "gtc", "post_only": True, "client_order_id": "my-order-1"},
                     {"asset_id": "BTC", "order_type": "limit_sell", "quantity": "0.5", "price": "94",
                      "stop_price": "95", "stop_kind": "stop_loss"}]})

    order_type: Literal["limit_buy", "limit_sell"]
    price: DecimalInput
    time_in_force: Literal["gtc", "ioc", "fok"] | None = Field(default=None, description="gtc when absent; "
                                                                "a stop limit order is gtc or ioc")
    post_only: StrictBool | None = Field(default=None, description="refused (422) with ioc or fok, or a stop")
    stop_price: DecimalInput | None = Field(default=None, description=_STOP_PRICE)
    stop_kind: StopKindName | None = Field(default=None, description=_STOP_KIND)


class MarketOrderRequest(_OrderFields):
    """A market order: no price (422 INVALID_ORDER if given), ioc or fok, never post_only."""

    model_config = ConfigDict(title="MarketOrderRequest", json_schema_extra={
        "oneOf": [_NO_STOP, _with_stop(order_type={"const": "market_sell"}, time_in_force={"enum": ["ioc", None]})],
        "examples": [{"asset_id": "BTC", "order_type": "market_buy", "quantity": "0.5"},
                     {"asset_id": "BTC", "order_type": "market_sell", "quantity": "0.5", "stop_price": "95",
                      "stop_kind": "stop_loss"}]})

    order_type: Literal["market_buy", "market_sell"]
    price: None = Field(default=None, description="market orders take no price")
    time_in_force: Literal["ioc", "fok"] | None = Field(default=None, description="ioc when absent")
    post_only: Literal[False] | None = None
    stop_price: DecimalInput | None = Field(default=None, description=_STOP_PRICE + "; market_sell only "
                                            "(a market_buy takes no stop: 422 INVALID_ORDER), ioc")
    stop_kind: StopKindName | None = Field(default=None, description=_STOP_KIND)


# The contract of POST /api/v1/orders, one variant per kind of order (stop variants join here).
OrderRequest = Annotated[Union[LimitOrderRequest, MarketOrderRequest], Field(discriminator="order_type")]
_ORDER_REQUEST = TypeAdapter(OrderRequest)


class BatchOrderItem(BaseModel):
    """An order of a batch: checked on its own, so one that breaks a rule of `OrderRequest`
    (a price on a market order, post_only with ioc, a zero quantity...) fails alone in
    `results`, with the code POST /api/v1/orders would answer."""

    asset_id: str = Field(min_length=1, max_length=10)
    order_type: OrderTypeName
    quantity: PlainDecimal
    price: PlainDecimal | None = None
    time_in_force: TimeInForceName | None = None
    post_only: StrictBool | None = None
    client_order_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = Field(default=None, max_length=500)
    stop_price: PlainDecimal | None = None
    stop_kind: StopKindName | None = None


class OrderCreateRequest(BatchOrderItem):
    """A new order as the route reads it, documented as the union `OrderRequest`.

    The route reads every variant through this lenient model and leaves the rules that tie
    fields together to `engine.check_order_shape`, so that breaking them answers 422
    INVALID_ORDER, as API.md says. What the document allows (the union) is what passes both.
    """

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        # Every field at the top (what any order may carry), and the variant that settles the rest.
        fields = handler.resolve_ref_schema(handler(core_schema))
        union = handler(_ORDER_REQUEST.core_schema)
        return {**fields, "oneOf": union["oneOf"], "discriminator": union["discriminator"]}


class OrderBatchRequest(BaseModel):
    orders: list[BatchOrderItem] = Field(min_length=1, max_length=100)


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
    stop_price: DecimalString | None = Field(description="the trigger of a stop order; null for plain orders")
    stop_kind: StopKindName | None = Field(description="stop_loss or take_profit; null for plain orders")
    triggered_at: str | None = Field(description="when a stop order's trigger held; null until then")


class OrderAmendRequest(BaseModel):
    """A change to an open order or waiting stop: at least one field (422 INVALID_AMEND otherwise)."""

    model_config = ConfigDict(json_schema_extra={
        "examples": [{"quantity": "0.3"}, {"price": "101.5"}, {"quantity": "0.3", "price": "99"}]})

    quantity: PlainDecimal | None = Field(
        default=None, description="the new total quantity: lower than the order's quantity and above its "
                                  "filled_quantity (else 422 INVALID_AMEND); the order keeps its time priority")
    price: PlainDecimal | None = Field(
        default=None, description="the new limit price, a multiple of tick_size: the order moves there and "
                                  "loses its time priority (a crossing move trades at once); a buy's hold is "
                                  "re-sized (422 INSUFFICIENT_BALANCE, unchanged, if the USD is not there)")


class CancelAllData(BaseModel):
    cancelled: list[OrderData]
    count: int


class OrderListData(BaseModel):
    username: str
    orders: list[OrderData]
    total_count: int
    has_more: bool


class BatchItemError(BaseModel):
    code: Literal["INVALID_ORDER", "INVALID_QUANTITY", "INVALID_PRICE", "INVALID_TICK_SIZE",
                  "INVALID_LOT_SIZE", "UNKNOWN_ASSET", "INSUFFICIENT_BALANCE", "DUPLICATE_CLIENT_ORDER_ID",
                  "STOP_WOULD_TRIGGER"]
    message: str
    details: Any = None


class OrderBatchItem(BaseModel):
    """One order's outcome: `data` on success; `error` (and, for a duplicate, the earlier order in `data`)."""

    success: bool
    data: OrderData | None = None
    error: BatchItemError | None = None


class OrderBatchData(BaseModel):
    results: list[OrderBatchItem]
