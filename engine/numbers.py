"""Exact fixed-point numbers: integers inside, decimal strings at the edge.

Prices are integer ticks of an asset's `tick_size`, quantities integer lots of
its `lot_size`, and money (USD) an integer count of `MONEY_UNIT` (1e-8 USD).
`tick_size * lot_size` must be a whole number of money units, so the notional
of any fill is `price * quantity * spec.money_per_tick_lot`, an exact integer.
A decimal that is not an exact multiple of its unit is rejected, never rounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Context, Decimal, InvalidOperation
from fractions import Fraction

from engine.errors import Rejected, RejectReason

USD = "USD"
MONEY_DECIMALS = 8
MONEY_UNITS_PER_USD = 10**MONEY_DECIMALS
MONEY_UNIT = Fraction(1, MONEY_UNITS_PER_USD)  # in USD: the one money unit constant
# The largest count of units (money units, lots, ticks) the journal's 64-bit integers hold: the
# most one account may hold of an asset (92,233,720,368.54775807 USD) and the highest price in
# ticks. Deposits and prices beyond it are refused; trades only move what was deposited, so no
# balance passes it while the whole deposits of an asset stay below it.
MAX_UNITS = (1 << 63) - 1
# Far beyond any sensible amount, small enough that Fraction arithmetic stays cheap.
_MAX_EXPONENT = 40
_MAX_DIGITS = 60


def parse_decimal(value: Decimal | str | int, reason: RejectReason) -> Fraction:
    """Convert a finite decimal to an exact Fraction or raise Rejected."""
    return Fraction(_finite_decimal(value, reason))


# Wide enough that scaling a number of at most _MAX_DIGITS digits never rounds.
_EXACT = Context(prec=2 * _MAX_DIGITS + 2 * _MAX_EXPONENT, Emax=999_999, Emin=-999_999)


# Plain ASCII decimals only: Python's Decimal would also read "１００" (full-width digits),
# "1_000", " 1 " and "NaN", which a client never means as a price.
_PLAIN_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def is_plain_decimal(text: str) -> bool:
    """Tell whether a string is a plain ASCII decimal (optionally signed, with an exponent)."""
    return len(text) <= 2 * _MAX_DIGITS and _PLAIN_DECIMAL.fullmatch(text) is not None


def _finite_decimal(value: Decimal | str | int, reason: RejectReason) -> Decimal:
    if isinstance(value, bool):
        raise Rejected(reason, "a boolean is not a number")
    if isinstance(value, str) and not is_plain_decimal(value):
        raise Rejected(reason, f"not a plain decimal number: {value[:40]!r}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        raise Rejected(reason, f"not a decimal number: {value!r}") from None
    if not number.is_finite():
        raise Rejected(reason, "the number must be finite")
    sign, digits, exponent = number.as_tuple()
    if len(digits) > _MAX_DIGITS or abs(exponent) > _MAX_EXPONENT:
        raise Rejected(reason, "the number is out of range")
    return number


def _in_units(value: Decimal | str | int, unit: Fraction, scale: tuple[int, int], what: str,
              invalid: RejectReason, not_multiple: RejectReason) -> int:
    """Return a positive `value` as a whole count of units (unit = mantissa / 10**places)."""
    number = _finite_decimal(value, invalid)
    if number <= 0:
        raise Rejected(invalid, f"{what} must be greater than 0")
    mantissa, places = scale
    scaled = _EXACT.scaleb(number, places)
    if scaled != scaled.to_integral_value() or int(scaled) % mantissa:
        raise Rejected(not_multiple, f"{what} must be a multiple of {_render(unit)}")
    return int(scaled) // mantissa


def _render(value: Fraction) -> str:
    """Render an exact decimal fraction as a plain decimal string."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    value = abs(value)
    whole, rest = divmod(value.numerator, value.denominator)
    if rest == 0:
        return f"{sign}{whole}"
    digits = []
    # The denominators here are products of 2s and 5s, so this terminates.
    for _ in range(64):
        rest *= 10
        digit, rest = divmod(rest, value.denominator)
        digits.append(str(digit))
        if rest == 0:
            break
    else:
        raise ValueError(f"{value} is not a terminating decimal")
    return f"{sign}{whole}.{''.join(digits)}"


def _decimal_scale(unit: Fraction) -> tuple[int, int]:
    """Return (mantissa, places) with unit == mantissa / 10**places, for fast exact rendering."""
    places = 0
    while (unit * 10**places).denominator != 1:
        places += 1
        if places > _MAX_EXPONENT:
            raise Rejected(RejectReason.INVALID_ASSET_SPEC, "sizes must be decimal numbers")
    return (unit * 10**places).numerator, places


def format_scaled(value: int, places: int) -> str:
    """Render the integer `value` / 10**places as a plain decimal string, trailing zeros dropped."""
    if not places:
        return str(value)
    sign = "-" if value < 0 else ""
    digits = str(abs(value)).rjust(places + 1, "0")
    fraction = digits[-places:].rstrip("0")
    return f"{sign}{digits[:-places]}.{fraction}" if fraction else f"{sign}{digits[:-places]}"


def format_money(amount: int) -> str:
    """Render an integer count of money units as a USD decimal string."""
    return format_scaled(amount, MONEY_DECIMALS)


def parse_money(value: Decimal | str | int) -> int:
    """Convert a USD decimal to money units exactly, or raise Rejected."""
    number = _finite_decimal(value, RejectReason.INVALID_AMOUNT)
    scaled = _EXACT.scaleb(number, MONEY_DECIMALS)
    if scaled != scaled.to_integral_value():
        raise Rejected(RejectReason.INVALID_AMOUNT, "a USD amount has at most 8 decimal places")
    return int(scaled)


@dataclass(frozen=True, slots=True)
class AssetSpec:
    """An asset's definition: the units its prices and quantities come in."""

    asset_id: str
    tick_size: Fraction
    lot_size: Fraction
    name: str = ""
    money_per_tick_lot: int = field(init=False)
    _price_scale: tuple[int, int] = field(init=False, repr=False, compare=False)
    _quantity_scale: tuple[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.lot_size <= 0:
            raise Rejected(RejectReason.INVALID_ASSET_SPEC, "tick_size and lot_size must be positive")
        notional = self.tick_size * self.lot_size * MONEY_UNITS_PER_USD
        if notional.denominator != 1:
            raise Rejected(
                RejectReason.INVALID_ASSET_SPEC,
                "tick_size × lot_size must be a multiple of 0.00000001 USD",
            )
        object.__setattr__(self, "money_per_tick_lot", notional.numerator)
        object.__setattr__(self, "_price_scale", _decimal_scale(self.tick_size))
        object.__setattr__(self, "_quantity_scale", _decimal_scale(self.lot_size))

    @classmethod
    def create(cls, asset_id: str, tick_size: Decimal | str, lot_size: Decimal | str, name: str = "") -> AssetSpec:
        """Build a spec from decimal sizes, rejecting any that are not exact."""
        tick = parse_decimal(tick_size, RejectReason.INVALID_ASSET_SPEC)
        lot = parse_decimal(lot_size, RejectReason.INVALID_ASSET_SPEC)
        return cls(asset_id, tick, lot, name)

    def to_ticks(self, price: Decimal | str | int) -> int:
        """Convert a decimal price to integer ticks exactly, or raise Rejected."""
        return _in_units(price, self.tick_size, self._price_scale, "price",
                         RejectReason.INVALID_PRICE, RejectReason.INVALID_TICK_SIZE)

    def to_lots(self, quantity: Decimal | str | int) -> int:
        """Convert a decimal quantity to integer lots exactly, or raise Rejected."""
        return _in_units(quantity, self.lot_size, self._quantity_scale, "quantity",
                         RejectReason.INVALID_QUANTITY, RejectReason.INVALID_LOT_SIZE)

    def amount_to_lots(self, amount: Decimal | str | int) -> int:
        """Convert a positive asset amount (deposit, withdrawal) to lots exactly."""
        return _in_units(amount, self.lot_size, self._quantity_scale, "amount",
                         RejectReason.INVALID_AMOUNT, RejectReason.INVALID_LOT_SIZE)

    def format_price(self, ticks: int) -> str:
        """Render integer ticks as a decimal price string."""
        mantissa, places = self._price_scale
        return format_scaled(ticks * mantissa, places)

    def format_quantity(self, lots: int) -> str:
        """Render integer lots as a decimal quantity string."""
        mantissa, places = self._quantity_scale
        return format_scaled(lots * mantissa, places)

    def notional(self, price: int, quantity: int) -> int:
        """Return the money value of `quantity` lots at `price` ticks."""
        return price * quantity * self.money_per_tick_lot

    def to_record(self) -> list:
        """Encode as plain values for journals and snapshots."""
        return [self.asset_id, _render(self.tick_size), _render(self.lot_size), self.name]

    @classmethod
    def from_record(cls, record: list) -> AssetSpec:
        """Decode what `to_record` made."""
        asset_id, tick_size, lot_size, name = record
        return cls.create(asset_id, tick_size, lot_size, name)


def format_fraction(value: Fraction, max_places: int = 12) -> str:
    """Render a ratio (an average price, a share): exact when it terminates within `max_places`
    decimals, else rounded half-even at `max_places` — averages need not be whole ticks."""
    return format_ratio(value.numerator, value.denominator, max_places)


def format_ratio(numerator: int, denominator: int, max_places: int = 12) -> str:
    """`format_fraction` of numerator / denominator (denominator > 0), in integers only."""
    whole, rest = divmod(numerator * 10**max_places, denominator)
    if rest * 2 > denominator or (rest * 2 == denominator and whole % 2):
        whole += 1
    return format_scaled(whole, max_places)
