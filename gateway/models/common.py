"""Shared model pieces: the envelope, decimal and date inputs, and the documented error answers.

Inputs are validated loosely here and exactly by the engine (which answers the error codes
of API.md), while their JSON schema states the whole rule, so that a client generated from
`/openapi.json` sends only what the service accepts. The two must agree: every string the
schema's pattern allows is a decimal the engine reads, and the engine refuses what it forbids.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, WithJsonSchema

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


# A decimal > 0, as the engine reads it (an optional "+", leading zeros, "5." and ".5"), bounded to
# what it keeps exact: at most 40 places and 60 digits. Exponents are read too, but not documented.
_FRACTION_ONLY = r"0{0,20}\.[0-9]{0,20}[1-9][0-9]{0,19}"
POSITIVE_DECIMAL_PATTERN = rf"^\+?(?:0{{0,20}}[1-9][0-9]{{0,19}}(?:\.[0-9]{{0,40}})?|{_FRACTION_ONLY})$"


def _at_most_pattern(power_of_ten: int) -> str:
    """A decimal > 0 and at most 10**power_of_ten."""
    return (rf"^\+?(?:0{{0,20}}[1-9][0-9]{{0,{power_of_ten - 1}}}(?:\.[0-9]{{0,40}})?"
            rf"|0{{0,20}}1{'0' * power_of_ten}(?:\.0{{0,40}})?|{_FRACTION_ONLY})$")


QUANTITY_PATTERN = _at_most_pattern(6)
DECIMAL_STRING_PATTERN = r"^-?[0-9]+(?:\.[0-9]+)?$"


def _decimal_schema(description: str, pattern: str, example: str, **number_bounds: Any) -> dict:
    return {
        "anyOf": [{"type": "string", "pattern": pattern},
                  # Tiny JSON numbers would be finer than the 40 places the engine keeps exact.
                  {"type": "number", "minimum": 1e-20, **number_bounds}],
        "description": f"{description}; a decimal string (\"{example}\"), or a JSON number read exactly "
                       "(never through a float). Beyond the asset's units (tick_size, lot_size, "
                       "8 places for USD) it is refused, never rounded.",
        "examples": [example],
    }


def _decimal_input_type(description: str, pattern: str, example: str, **number_bounds: Any):
    return Annotated[Decimal, BeforeValidator(_decimal_input),
                     WithJsonSchema(_decimal_schema(description, pattern, example, **number_bounds),
                                    mode="validation")]


DecimalInput = _decimal_input_type("greater than 0, below 10**20", POSITIVE_DECIMAL_PATTERN, "100.25",
                                   exclusiveMaximum=10**20)
Quantity = _decimal_input_type("greater than 0 and at most 1000000", QUANTITY_PATTERN, "0.5",
                               maximum=1_000_000)
MAX_AMOUNT = Decimal(10) ** 10


def _at_most_max_amount(value: Decimal) -> Decimal:
    # A balance must fit the journal's 64-bit integers (in USD: 1e8 units per dollar); one
    # larger deposit crashed its account shard, which then restarted from its journal.
    if value.is_finite() and value > MAX_AMOUNT:
        raise ValueError("an amount is at most 10000000000")
    return value


Amount = Annotated[_decimal_input_type("greater than 0 and at most 10000000000", _at_most_pattern(10), "250",
                                       maximum=10**10), AfterValidator(_at_most_max_amount)]
# Any decimal the engine reads, sign and exponent included: a batch item's amounts, which the
# engine then judges item by item.
PLAIN_DECIMAL_PATTERN = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,2})?$"
PlainDecimal = Annotated[Decimal, BeforeValidator(_decimal_input), WithJsonSchema({
    "anyOf": [{"type": "string", "pattern": PLAIN_DECIMAL_PATTERN, "maxLength": 120}, {"type": "number"}],
    "description": "a decimal string or JSON number, read exactly",
    "examples": ["100.25"]}, mode="validation")]
DecimalString = Annotated[str, Field(description="an exact decimal written as a string",
                                     pattern=DECIMAL_STRING_PATTERN, examples=["100.25"])]

# ISO 8601 with a date and a time; an offset, or UTC without one (Z, +hh:mm, +hhmm).
_ISO_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?"
                            r"(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})?")


def _iso_date_time(value: Any) -> Any:
    # Pydantic's lax mode would read "0.5" as epoch seconds; the contract is ISO 8601 only.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or _ISO_DATE_TIME.fullmatch(value) is None:
        raise ValueError("a date is ISO 8601, like 2024-05-01T12:00:00Z")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_date_time), WithJsonSchema({
    "type": "string", "format": "date-time",
    "description": "ISO 8601 date and time (2024-05-01T12:00:00Z); UTC unless an offset is given",
    "examples": ["2024-05-01T12:00:00Z"]})]


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
    """Every error answer: the envelope with `success` false and `error.code`."""

    success: bool = False
    message: str
    data: Any = None
    timestamp: str
    error: ErrorBody
