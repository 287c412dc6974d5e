"""Rejections travel as values; faults are exceptions rooted at EngineError.

A `RejectReason` is an answer to a request that cannot be carried out (bad
input, not enough money, an order that is not open). The engine returns it and
changes nothing. An `EngineError` means the engine's own state is broken or a
caller broke a contract (an event applied out of order); it is a bug to fix,
never an answer to a user.
"""

from __future__ import annotations

from enum import Enum


class RejectReason(str, Enum):
    """Why a command was refused; the gateway maps each to an HTTP answer."""

    INVALID_PRICE = "INVALID_PRICE"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    INVALID_TICK_SIZE = "INVALID_TICK_SIZE"
    INVALID_LOT_SIZE = "INVALID_LOT_SIZE"
    INVALID_ASSET_SPEC = "INVALID_ASSET_SPEC"
    INVALID_ORDER = "INVALID_ORDER"
    INVALID_AMEND = "INVALID_AMEND"
    STOP_WOULD_TRIGGER = "STOP_WOULD_TRIGGER"
    POST_ONLY_WOULD_MATCH = "POST_ONLY_WOULD_MATCH"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    UNKNOWN_ASSET = "UNKNOWN_ASSET"
    ASSET_EXISTS = "ASSET_EXISTS"
    USER_EXISTS = "USER_EXISTS"
    UNKNOWN_USER = "UNKNOWN_USER"
    DUPLICATE_ORDER_ID = "DUPLICATE_ORDER_ID"
    DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    ORDER_NOT_OPEN = "ORDER_NOT_OPEN"
    SETTLEMENT_ALREADY_APPLIED = "SETTLEMENT_ALREADY_APPLIED"
    SETTLEMENT_OUT_OF_ORDER = "SETTLEMENT_OUT_OF_ORDER"


class Rejected(ValueError):
    """Raised by edge conversions (decimal to integer) that cannot be exact."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class EngineError(Exception):
    """Root of real faults: broken invariants and contract violations."""


class BookIntegrityError(EngineError):
    """The order book's internal state contradicts itself."""
