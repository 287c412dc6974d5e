"""The pure domain: order books, accounts, exact numbers and events.

Nothing here does I/O, reads a clock or draws a random number: timestamps and
ids are passed in, and every mutation returns the events it caused.
"""

from engine.accounts import Accounts, Balance, Transaction
from engine.book import BUY, SELL, OrderBook, SubmitResult
from engine.digest import state_digest
from engine.errors import BookIntegrityError, EngineError, Rejected, RejectReason
from engine.events import (
    AmendAborted, AmendRefused, AmendRequested, AssetListed, FundsDeposited, FundsHeld, FundsWithdrawn,
    OrderAborted, OrderAccepted, OrderAmended, OrderClosed, OrderHeld, OrderRested, SettlementApplied,
    StopAccepted, StopTriggered, TradeExecuted, decode_event, encode_event,
)
from engine.numbers import USD, AssetSpec, format_money, parse_money
from engine.orders import (
    CloseReason, OrderRecord, OrderStatus, OrderType, OrderView, Side, StopKind, TimeInForce, check_order_shape,
)

__all__ = [
    "Accounts", "Balance", "Transaction", "BUY", "SELL", "OrderBook", "SubmitResult", "state_digest",
    "BookIntegrityError", "EngineError", "Rejected", "RejectReason", "AssetListed",
    "FundsDeposited", "FundsHeld", "FundsWithdrawn", "OrderAborted", "OrderAccepted",
    "OrderClosed", "OrderHeld", "OrderRested", "SettlementApplied", "TradeExecuted", "decode_event",
    "encode_event", "USD", "AssetSpec", "format_money", "parse_money", "CloseReason",
    "OrderRecord", "OrderStatus", "OrderType", "OrderView", "Side", "TimeInForce", "check_order_shape",
    "AmendAborted", "AmendRefused", "AmendRequested", "OrderAmended", "StopAccepted", "StopTriggered", "StopKind",
]
