"""A small, obviously correct order book to hold `engine.book.OrderBook` against.

It implements the matching rules of API.md ("Orders") and nothing more, in the
plainest way: one list of resting orders kept sorted by (side, price priority,
arrival), linear scans, whole-list sorts. It is slow on purpose; it must stay
easy to check by reading.

Rules, in the order `submit` applies them:
- The makers an order can reach are the opposite side's orders in priority
  whose price is within its limit (all of them for a market order).
- `post_only` fails (`failed`, `post_only_would_match`) if it can reach anyone.
- Walking the reachable makers in priority: meeting one of the taker's own
  orders stops it (`self_trade_prevented`); otherwise it takes
  min(maker remaining, its own remaining) at the maker's price. A market buy
  with a budget takes at each maker only as many lots as the budget still
  affords and stops (`insufficient_funds`) when it cannot afford the lots it
  wanted there.
- `fok` executes only if that walk fills the whole quantity; else it is
  `cancelled`, `fok_unfillable`, with no trades.
- After the walk: stopped early -> `cancelled` with the stop reason; nothing
  left -> `completed`; market -> `cancelled`, `no_liquidity`; ioc ->
  `cancelled`, `ioc_expired`; gtc -> the rest rests (`processing` if anything
  filled, else `confirmed`).
"""

from __future__ import annotations

from dataclasses import dataclass

BUY = "buy"
SELL = "sell"


@dataclass
class ReferenceOrder:
    order_id: int
    owner: str
    side: str
    price: int
    remaining: int
    arrival: int


@dataclass(frozen=True)
class ReferenceTrade:
    trade_id: int
    price: int
    quantity: int
    maker_order_id: int
    maker_owner: str


@dataclass(frozen=True)
class ReferenceResult:
    status: str
    reason: str | None
    filled_quantity: int
    trades: tuple[ReferenceTrade, ...]


def _priority(order: ReferenceOrder) -> tuple:
    price_rank = -order.price if order.side == BUY else order.price
    return (order.side, price_rank, order.arrival)


class ReferenceBook:
    """Resting orders in one sorted list; every operation scans it."""

    def __init__(self, money_per_tick_lot: int) -> None:
        self.money_per_tick_lot = money_per_tick_lot
        self.orders: list[ReferenceOrder] = []
        self.arrivals = 0
        self.trade_count = 0
        self.last_price: int | None = None

    # ---- queries -------------------------------------------------------

    def orders_in_priority(self, side: str) -> list[ReferenceOrder]:
        """Return one side's orders, best price first, then arrival."""
        return [order for order in self.orders if order.side == side]

    def best_bid(self) -> int | None:
        bids = self.orders_in_priority(BUY)
        return bids[0].price if bids else None

    def best_ask(self) -> int | None:
        asks = self.orders_in_priority(SELL)
        return asks[0].price if asks else None

    def depth(self, side: str) -> list[tuple[int, int, int]]:
        """Return (price, total quantity, order count) per price, best first."""
        rows: list[list[int]] = []
        for order in self.orders_in_priority(side):
            if rows and rows[-1][0] == order.price:
                rows[-1][1] += order.remaining
                rows[-1][2] += 1
            else:
                rows.append([order.price, order.remaining, 1])
        return [tuple(row) for row in rows]

    # ---- commands ------------------------------------------------------

    def submit(self, order_id: int, owner: str, side: str, quantity: int, price: int | None = None,
               time_in_force: str = "gtc", post_only: bool = False,
               budget: int | None = None) -> ReferenceResult:
        """Match one incoming order by the rules in the module docstring."""
        opposite = SELL if side == BUY else BUY
        reachable = [maker for maker in self.orders_in_priority(opposite)
                     if price is None or (maker.price <= price if side == BUY else maker.price >= price)]

        if post_only and reachable:
            return ReferenceResult("failed", "post_only_would_match", 0, ())

        fills, stop = self._walk(owner, quantity, budget, reachable)
        filled = sum(take for _, take in fills)
        if time_in_force == "fok" and filled < quantity:
            return ReferenceResult("cancelled", "fok_unfillable", 0, ())

        trades = tuple(self._trade(maker, take) for maker, take in fills)
        remaining = quantity - filled
        if stop is not None:
            return ReferenceResult("cancelled", stop, filled, trades)
        if remaining == 0:
            return ReferenceResult("completed", None, filled, trades)
        if price is None:
            return ReferenceResult("cancelled", "no_liquidity", filled, trades)
        if time_in_force == "ioc":
            return ReferenceResult("cancelled", "ioc_expired", filled, trades)
        self.arrivals += 1
        self.orders.append(ReferenceOrder(order_id, owner, side, price, remaining, self.arrivals))
        self.orders.sort(key=_priority)
        return ReferenceResult("processing" if filled else "confirmed", None, filled, trades)

    def cancel(self, order_id: int) -> ReferenceOrder | None:
        """Remove a resting order; return it, or None if it is not resting."""
        for order in self.orders:
            if order.order_id == order_id:
                self.orders.remove(order)
                return order
        return None

    # ---- internals -----------------------------------------------------

    def _walk(self, owner: str, quantity: int, budget: int | None,
              makers: list[ReferenceOrder]) -> tuple[list[tuple[ReferenceOrder, int]], str | None]:
        """Plan the fills without changing anything; return them and why the walk stopped early."""
        fills: list[tuple[ReferenceOrder, int]] = []
        left = quantity
        for maker in makers:
            if left == 0:
                break
            if maker.owner == owner:
                return fills, "self_trade_prevented"
            take = min(maker.remaining, left)
            if budget is not None:
                lot_cost = maker.price * self.money_per_tick_lot
                affordable = budget // lot_cost
                if affordable < take:
                    if affordable:
                        fills.append((maker, affordable))
                    return fills, "insufficient_funds"
                budget -= take * lot_cost
            fills.append((maker, take))
            left -= take
        return fills, None

    def _trade(self, maker: ReferenceOrder, quantity: int) -> ReferenceTrade:
        maker.remaining -= quantity
        if maker.remaining == 0:
            self.orders.remove(maker)
        self.trade_count += 1
        self.last_price = maker.price
        return ReferenceTrade(self.trade_count, maker.price, quantity, maker.order_id, maker.owner)
