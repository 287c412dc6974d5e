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

Stops, amends and cancel-all (API.md "Stop-loss and take-profit orders" and
"Changing open orders"), as plainly:
- A stop waits in `stops` (a list in placement order). It triggers at a trade
  price p: a sell stop_loss or buy take_profit when p <= stop_price, a sell
  take_profit or buy stop_loss when p >= stop_price. One placed while its
  trigger holds (against the last trade price) triggers at once.
- After an order is done, for each of its trades in turn, the stops that
  trigger at that trade's price leave `stops`, sorted: those triggered by a
  fall first, highest stop price first; then those triggered by a rise,
  lowest first; ties by placement. They join a queue; each enters `submit` as a
  new order (time priority now), and the stops its trades trigger join the end
  of the queue, until it is empty.
- `amend` of a resting order: fewer lots only -> the order shrinks in place; a
  new price -> it leaves and enters `submit` again with the same id (a
  post-only one that would cross is refused instead). Of a stop: it shrinks and
  takes the new limit price, and keeps waiting. Refusals: not open, or not more
  lots left than it loses, or a post-only cross.
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


@dataclass
class ReferenceStop:
    order_id: int
    owner: str
    side: str
    stop_kind: str
    stop_price: int
    price: int | None
    quantity: int
    time_in_force: str
    placement: int


def _falls(stop: ReferenceStop) -> bool:
    return (stop.side == SELL) == (stop.stop_kind == "stop_loss")


def _holds(stop: ReferenceStop, price: int) -> bool:
    return price <= stop.stop_price if _falls(stop) else price >= stop.stop_price


class ReferenceBook:
    """Resting orders in one sorted list; every operation scans it."""

    def __init__(self, money_per_tick_lot: int) -> None:
        self.money_per_tick_lot = money_per_tick_lot
        self.stops: list[ReferenceStop] = []
        self.placements = 0
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

    def cancel(self, order_id: int) -> ReferenceOrder | ReferenceStop | None:
        """Remove a resting order or waiting stop; return it, or None if it is neither."""
        for order in self.orders:
            if order.order_id == order_id:
                self.orders.remove(order)
                return order
        for stop in self.stops:
            if stop.order_id == order_id:
                self.stops.remove(stop)
                return stop
        return None

    def open_ids(self, owner: str) -> list[int]:
        """Every resting order and waiting stop of one owner: resting orders (bids, then asks, in
        priority), then stops in placement order. Cancel-all cancels them in this order."""
        return ([order.order_id for order in self.orders if order.owner == owner]
                + [stop.order_id for stop in self.stops if stop.owner == owner])

    # ---- stops and amends ------------------------------------------------

    def submit_and_cascade(self, order_id: int, owner: str, side: str, quantity: int, price: int | None = None,
                           time_in_force: str = "gtc", post_only: bool = False,
                           budget: int | None = None) -> tuple[ReferenceResult, list]:
        """`submit`, then the cascade of the stops its trades triggered: [(stop, result), ...]."""
        result = self.submit(order_id, owner, side, quantity, price, time_in_force, post_only, budget)
        return result, self._cascade(result.trades)

    def submit_stop(self, order_id: int, owner: str, side: str, stop_kind: str, stop_price: int,
                    quantity: int, price: int | None, time_in_force: str) -> list:
        """Make a stop wait, or trigger it at once if its trigger holds; return the cascade."""
        self.placements += 1
        stop = ReferenceStop(order_id, owner, side, stop_kind, stop_price, price, quantity, time_in_force,
                             self.placements)
        if self.last_price is not None and _holds(stop, self.last_price):
            return self._run([stop])
        self.stops.append(stop)
        return []

    def amend(self, order_id: int, reduced_by: int, price: int | None,
              post_only: bool) -> tuple[str | None, ReferenceResult | None, list]:
        """Amend by the rules above: (refusal reason or None, the moved order's result, cascade)."""
        for order in self.orders:
            if order.order_id == order_id:
                if order.remaining <= reduced_by:
                    return "INVALID_AMEND", None, []
                if price is None or price == order.price:
                    order.remaining -= reduced_by
                    return None, None, []
                opposite = [maker for maker in self.orders_in_priority(SELL if order.side == BUY else BUY)
                            if (maker.price <= price if order.side == BUY else maker.price >= price)]
                if post_only and opposite:
                    return "POST_ONLY_WOULD_MATCH", None, []
                self.orders.remove(order)
                result, cascade = self.submit_and_cascade(order_id, order.owner, order.side,
                                                          order.remaining - reduced_by, price)
                return None, result, cascade
        for stop in self.stops:
            if stop.order_id == order_id:
                if stop.quantity <= reduced_by or (price is not None and stop.price is None):
                    return "INVALID_AMEND", None, []
                stop.quantity -= reduced_by
                if price is not None:
                    stop.price = price
                return None, None, []
        return "ORDER_NOT_OPEN", None, []

    def _cascade(self, trades) -> list:
        return self._run(self._take_triggered(trades))

    def _run(self, queue: list) -> list:
        done = []
        while queue:
            stop = queue.pop(0)
            result = self.submit(stop.order_id, stop.owner, stop.side, stop.quantity, stop.price,
                                 stop.time_in_force)
            done.append((stop, result))
            queue.extend(self._take_triggered(result.trades))
        return done

    def _take_triggered(self, trades) -> list:
        found = []
        for trade in trades:
            now = [stop for stop in self.stops if _holds(stop, trade.price)]
            falling = sorted((stop for stop in now if _falls(stop)), key=lambda s: (-s.stop_price, s.placement))
            rising = sorted((stop for stop in now if not _falls(stop)), key=lambda s: (s.stop_price, s.placement))
            for stop in falling + rising:
                self.stops.remove(stop)
                found.append(stop)
        return found

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
