"""Shared model pieces: the envelope, decimal inputs, pagination."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, Field

from engine.numbers import is_plain_decimal

T = TypeVar("T")


def _decimal_input(value: Any) -> Any:
    # JSON numbers arrive as Decimal (the body is parsed with parse_float=Decimal), strings as str;
    # a bool is a JSON true/false, never a number.
    if isinstance(value, bool):
        raise ValueError("a decimal is a string or a number, not a boolean")
    if isinstance(value, float):
        raise ValueError("a decimal must be sent as a string or an exact JSON number")
    if isinstance(value, str) and not is_plain_decimal(value):
        raise ValueError("a decimal is written with ASCII digits, like \"100.25\"")
    return value


DecimalInput = Annotated[Decimal, BeforeValidator(_decimal_input),
                         Field(description="a decimal, as a string (\"100.25\") or a JSON number")]
DecimalString = Annotated[str, Field(description="an exact decimal written as a string", examples=["100.25"])]


class Envelope(BaseModel, Generic[T]):
    """Every answer but the health routes."""

    success: bool
    message: str
    data: T | None = None
    timestamp: str


class ErrorBody(BaseModel):
    code: str
    details: Any = None


class ErrorEnvelope(BaseModel):
    success: bool = False
    message: str
    data: Any = None
    timestamp: str
    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in (
        (401, "Missing or wrong bearer token"),
        (403, "A user token on an admin route"),
        (404, "Not found"),
        (409, "Conflict"),
        (422, "Invalid request or rejected by the rules"),
        (503, "The service is recovering"),
    )
}
