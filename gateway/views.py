"""Engine records to API.md shapes: integers in, decimal strings out.

Money, prices and quantities render exactly. Two derived figures are ratios
and may not terminate: an average price (Σ notional / Σ quantity) and a
portfolio percentage; they are exact when they terminate within 12 decimals
and rounded half-even at the 12th otherwise.
"""

from __future__ import annotations

from fractions import Fraction

from actors.messages import MarketSummary, OrderView, Transaction
from engine import AssetSpec, format_money
from engine.numbers import MONEY_UNITS_PER_USD, format_fraction, format_ratio
from gateway.responses import iso_from_micros


def average_price(total_amount: int, filled_lots: int, spec: AssetSpec) -> str | None:
    if not filled_lots:
        return None
    lot = spec.lot_size  # money units / (lots × lot size), as one integer ratio: no Fraction arithmetic
    return format_ratio(total_amount * lot.denominator, filled_lots * lot.numerator * MONEY_UNITS_PER_USD)


def order_data(order: OrderView, spec: AssetSpec) -> dict:
    """Render an order as OrderData."""
    filled = order.filled_quantity
    average = average_price(order.total_amount, filled, spec)
    return {
        "order_id": str(order.order_id),
        "client_order_id": order.client_order_id,
        "username": order.username,
        "asset_id": order.asset_id,
        "order_type": order.order_type,
        "time_in_force": order.time_in_force,
        "post_only": order.post_only,
        "status": order.status,
        "quantity": spec.format_quantity(order.quantity),
        "price": spec.format_price(order.price) if order.price is not None else (average or "0"),
        "filled_quantity": spec.format_quantity(filled),
        "remaining_quantity": spec.format_quantity(order.quantity - filled),
        "average_price": average,
        "total_amount": format_money(order.total_amount),
        "reason": order.reason,
        "description": order.description,
        "created_at": iso_from_micros(order.created_at),
        "updated_at": iso_from_micros(order.updated_at),
        "stop_price": spec.format_price(order.stop_price) if order.stop_price is not None else None,
        "stop_kind": order.stop_kind,
        "triggered_at": iso_from_micros(order.triggered_at) if order.triggered_at is not None else None,
    }


def transaction_data(item: Transaction, spec: AssetSpec) -> dict:
    """Render one side of a fill as AssetTransactionData."""
    return {
        "transaction_id": item.transaction_id,
        "username": item.username,
        "asset_id": item.asset_id,
        "transaction_type": item.transaction_type,
        "quantity": spec.format_quantity(item.quantity),
        "price": spec.format_price(item.price),
        "total_amount": format_money(item.total_amount),
        "order_id": str(item.order_id),
        "status": "completed",
        "timestamp": iso_from_micros(item.timestamp),
    }


def current_price(spec: AssetSpec, summary: MarketSummary | None) -> Fraction:
    """Return the asset's price in USD: last trade, else the mid, else the one side, else 0."""
    if summary is None:
        return Fraction(0)
    last_price, best_bid, best_ask = summary.last_price, summary.best_bid, summary.best_ask
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


def asset_data(spec: AssetSpec, summary: MarketSummary | None) -> dict:
    summary = summary or MarketSummary(None, None, None)

    def price(ticks: int | None) -> str | None:
        return None if ticks is None else spec.format_price(ticks)

    return {
        "asset_id": spec.asset_id,
        "name": spec.name,
        "tick_size": spec.format_price(1),
        "lot_size": spec.format_quantity(1),
        "last_price": price(summary.last_price),
        "best_bid": price(summary.best_bid),
        "best_ask": price(summary.best_ask),
    }


def iso_or_none(micros: int) -> str | None:
    return iso_from_micros(micros) if micros else None
