"""Engine records to API.md shapes: integers in, decimal strings out.

Money, prices and quantities render exactly. Two derived figures are ratios
and may not terminate: an average price (Σ notional / Σ quantity) and a
portfolio percentage; they are exact when they terminate within 12 decimals
and rounded half-even at the 12th otherwise.
"""

from __future__ import annotations

from fractions import Fraction

from engine import AssetSpec, format_money
from engine.numbers import MONEY_DECIMALS, format_fraction, format_ratio
from gateway.responses import iso_from_micros

_USD = Fraction(1, 10**MONEY_DECIMALS)
_MONEY_UNITS_PER_USD = 10**MONEY_DECIMALS


def average_price(total_amount: int, filled_lots: int, spec: AssetSpec) -> str | None:
    if not filled_lots:
        return None
    lot = spec.lot_size  # money units / (lots × lot size), as one integer ratio: no Fraction arithmetic
    return format_ratio(total_amount * lot.denominator, filled_lots * lot.numerator * _MONEY_UNITS_PER_USD)


def order_data(record: list, spec: AssetSpec) -> dict:
    """Render an order record (OrderRecord.to_record) as OrderData."""
    (order_id, username, asset_id, order_type, time_in_force, post_only, quantity, price,
     client_order_id, description, created_at, updated_at, status, reason, filled, total_amount,
     _reserved) = record
    average = average_price(total_amount, filled, spec)
    return {
        "order_id": str(order_id),
        "client_order_id": client_order_id,
        "username": username,
        "asset_id": asset_id,
        "order_type": order_type,
        "time_in_force": time_in_force,
        "post_only": post_only,
        "status": status,
        "quantity": spec.format_quantity(quantity),
        "price": spec.format_price(price) if price is not None else (average or "0"),
        "filled_quantity": spec.format_quantity(filled),
        "remaining_quantity": spec.format_quantity(quantity - filled),
        "average_price": average,
        "total_amount": format_money(total_amount),
        "reason": reason,
        "description": description,
        "created_at": iso_from_micros(created_at),
        "updated_at": iso_from_micros(updated_at),
    }


def transaction_data(item: tuple, spec: AssetSpec) -> dict:
    (transaction_id, username, asset_id, transaction_type, quantity, price, total_amount,
     order_id, timestamp) = item
    return {
        "transaction_id": transaction_id,
        "username": username,
        "asset_id": asset_id,
        "transaction_type": transaction_type,
        "quantity": spec.format_quantity(quantity),
        "price": spec.format_price(price),
        "total_amount": format_money(total_amount),
        "order_id": str(order_id),
        "status": "completed",
        "timestamp": iso_from_micros(timestamp),
    }


def current_price(spec: AssetSpec, summary: tuple | None) -> Fraction:
    """Return the asset's price in USD: last trade, else the mid, else the one side, else 0."""
    if summary is None:
        return Fraction(0)
    last_price, best_bid, best_ask = summary
    if last_price is not None:
        ticks = Fraction(last_price)
    elif best_bid is not None and best_ask is not None:
        ticks = Fraction(best_bid + best_ask, 2)
    elif best_bid is not None or best_ask is not None:
        ticks = Fraction(best_bid if best_bid is not None else best_ask)
    else:
        ticks = Fraction(0)
    return ticks * spec.tick_size


def decimal(value: Fraction) -> str:
    """Render an exact value whose decimal expansion terminates (prices, values of holdings)."""
    return format_fraction(value, 24)


def asset_data(spec: AssetSpec, summary: tuple | None) -> dict:
    last_price, best_bid, best_ask = summary or (None, None, None)

    def price(ticks: int | None) -> str | None:
        return None if ticks is None else spec.format_price(ticks)

    return {
        "asset_id": spec.asset_id,
        "name": spec.name,
        "tick_size": spec.format_price(1),
        "lot_size": spec.format_quantity(1),
        "last_price": price(last_price),
        "best_bid": price(best_bid),
        "best_ask": price(best_ask),
    }


def iso_or_none(micros: int) -> str | None:
    return iso_from_micros(micros) if micros else None
