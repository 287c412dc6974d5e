"""One asset's limit order book: price-time priority matching.

The book is the authority on which orders are open. It owns its price levels
and resting orders and nothing else: it holds no money and knows no accounts
beyond the owner name on each order, which it needs for self-trade prevention.
Every mutation returns the events it caused, and `apply` rebuilds the same
book from them. Prices are integer ticks, quantities integer lots; a market
buy may carry a budget in money units and stops before a fill it cannot pay.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from typing import Any, NamedTuple

from engine.book_level import PriceLevel, RestingOrder
from engine.errors import BookIntegrityError, RejectReason
from engine.events import OrderClosed, OrderRested, TradeExecuted
from engine.numbers import AssetSpec
from engine.orders import CloseReason, OrderStatus, TimeInForce

BUY = "buy"
SELL = "sell"
_GTC, _IOC, _FOK = TimeInForce.GTC.value, TimeInForce.IOC.value, TimeInForce.FOK.value
_COMPLETED = OrderStatus.COMPLETED.value
_CANCELLED = OrderStatus.CANCELLED.value
_FAILED = OrderStatus.FAILED.value
_SELF_TRADE = CloseReason.SELF_TRADE_PREVENTED.value
_OUT_OF_BUDGET = CloseReason.INSUFFICIENT_FUNDS.value
DEFAULT_TAPE_SIZE = 1000


class SubmitResult(NamedTuple):
    """What matching did with one incoming order; `events` ends with its outcome."""

    order_id: int
    status: str
    reason: str | None
    filled_quantity: int
    events: list

    @property
    def trades(self) -> list[TradeExecuted]:
        return self.events[:-1]


class OrderBook:
    """Price levels for one asset: bids best-last ascending, asks by negated price."""

    def __init__(self, spec: AssetSpec, tape_size: int = DEFAULT_TAPE_SIZE) -> None:
        self.spec = spec
        self._bids: dict[int, PriceLevel] = {}
        self._bid_prices: list[int] = []  # ascending: the best bid is last
        self._asks: dict[int, PriceLevel] = {}
        self._ask_keys: list[int] = []  # negated prices ascending: the best ask is last
        self._orders: dict[int, RestingOrder] = {}
        self.trade_sequence = 0
        self.sequence = 0
        self.last_price: int | None = None
        self.tape: deque[TradeExecuted] = deque(maxlen=tape_size)

    # ---- queries -------------------------------------------------------

    def best_bid(self) -> int | None:
        """Return the highest bid price in ticks, or None."""
        return self._bid_prices[-1] if self._bid_prices else None

    def best_ask(self) -> int | None:
        """Return the lowest ask price in ticks, or None."""
        return -self._ask_keys[-1] if self._ask_keys else None

    def is_open(self, order_id: int) -> bool:
        """Tell whether the order rests on this book."""
        return order_id in self._orders

    def resting(self, order_id: int) -> RestingOrder | None:
        """Return the resting order with this id, or None."""
        return self._orders.get(order_id)

    def open_order_count(self) -> int:
        return len(self._orders)

    def depth(self, levels: int = 20) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """Return aggregated (price, quantity, order_count) levels, best first, per side."""
        bids = [self._level_row(self._bids[price]) for price in reversed(self._bid_prices[-levels:])]
        asks = [self._level_row(self._asks[-key]) for key in reversed(self._ask_keys[-levels:])]
        return bids, asks

    @staticmethod
    def _level_row(level: PriceLevel) -> tuple[int, int, int]:
        return level.price, level.quantity, level.count

    def orders_in_priority(self, side: str) -> list[RestingOrder]:
        """Return the live orders of one side, best price first, then time priority."""
        if side == BUY:
            levels = [self._bids[price] for price in reversed(self._bid_prices)]
        else:
            levels = [self._asks[-key] for key in reversed(self._ask_keys)]
        return [order for level in levels for order in level.live_orders()]

    # ---- commands ------------------------------------------------------

    def submit(
        self, order_id: int, owner: str, side: str, quantity: int, *, price: int | None = None,
        time_in_force: str = _GTC, post_only: bool = False, budget: int | None = None,
        timestamp: int = 0,
    ) -> SubmitResult | RejectReason:
        """Match an incoming order; rest a GTC limit's remainder. `price=None` is a market order."""
        if quantity <= 0:
            return RejectReason.INVALID_QUANTITY
        if order_id in self._orders:
            return RejectReason.DUPLICATE_ORDER_ID
        if price is None:
            if time_in_force == _GTC or post_only:
                return RejectReason.INVALID_ORDER
        elif price <= 0:
            return RejectReason.INVALID_PRICE
        elif post_only and time_in_force != _GTC:
            return RejectReason.INVALID_ORDER
        if budget is not None and (side != BUY or price is not None or budget <= 0):
            return RejectReason.INVALID_ORDER

        events: list = []
        if post_only and self._crosses(side, price):
            return self._close(order_id, owner, _FAILED, CloseReason.POST_ONLY_WOULD_MATCH.value, 0,
                               timestamp, events)
        if time_in_force == _FOK and not self._can_fill(side, price, quantity, owner, budget):
            return self._close(order_id, owner, _CANCELLED, CloseReason.FOK_UNFILLABLE.value, 0,
                               timestamp, events)

        remaining, stop = self._match(order_id, owner, side, price, quantity, budget, timestamp, events)
        filled = quantity - remaining
        if stop is not None:
            return self._close(order_id, owner, _CANCELLED, stop, filled, timestamp, events)
        if not remaining:
            return self._close(order_id, owner, _COMPLETED, None, filled, timestamp, events)
        if price is None:
            return self._close(order_id, owner, _CANCELLED, CloseReason.NO_LIQUIDITY.value, filled,
                               timestamp, events)
        if time_in_force != _GTC:
            reason = CloseReason.IOC_EXPIRED if time_in_force == _IOC else CloseReason.FOK_UNFILLABLE
            return self._close(order_id, owner, _CANCELLED, reason.value, filled, timestamp, events)
        rested = OrderRested(order_id, owner, side, price, remaining, timestamp)
        self._rest(rested)
        events.append(rested)
        self.sequence += 1
        status = OrderStatus.PROCESSING.value if filled else OrderStatus.CONFIRMED.value
        return SubmitResult(order_id, status, None, filled, events)

    def submit_limit(self, order_id: int, owner: str, side: str, price: int, quantity: int,
                     time_in_force: str = _GTC, post_only: bool = False,
                     timestamp: int = 0) -> SubmitResult | RejectReason:
        """Submit a limit order."""
        return self.submit(order_id, owner, side, quantity, price=price, time_in_force=time_in_force,
                           post_only=post_only, timestamp=timestamp)

    def submit_market(self, order_id: int, owner: str, side: str, quantity: int,
                      time_in_force: str = _IOC, budget: int | None = None,
                      timestamp: int = 0) -> SubmitResult | RejectReason:
        """Submit a market order (IOC or FOK), a buy optionally limited by a money budget."""
        return self.submit(order_id, owner, side, quantity, time_in_force=time_in_force,
                           budget=budget, timestamp=timestamp)

    def cancel(self, order_id: int, timestamp: int = 0) -> OrderClosed | RejectReason:
        """Take a resting order off the book."""
        order = self._orders.get(order_id)
        if order is None:
            return RejectReason.ORDER_NOT_OPEN
        event = OrderClosed(order_id, order.owner, _CANCELLED, CloseReason.USER_CANCELLED.value, timestamp)
        self._remove(order)
        self.sequence += 1
        return event

    # ---- replay --------------------------------------------------------

    def apply(self, event: Any) -> None:
        """Apply one of this book's events, as recorded, to rebuild its state."""
        kind = type(event)
        if kind is TradeExecuted:
            maker = self._orders.get(event.maker_order_id)
            if maker is None or maker.remaining < event.quantity or maker.price != event.price:
                raise BookIntegrityError(f"trade {event.trade_id} does not match its maker order")
            level = (self._bids if maker.side == BUY else self._asks)[maker.price]
            if maker.remaining == event.quantity:
                self._remove(maker)
            else:
                maker.remaining -= event.quantity
                level.quantity -= event.quantity
            self._record_trade(event)
        elif kind is OrderRested:
            if event.order_id in self._orders:
                raise BookIntegrityError(f"order {event.order_id} rests twice")
            self._rest(event)
        elif kind is OrderClosed:
            order = self._orders.get(event.order_id)
            if order is not None:
                self._remove(order)
        else:
            raise BookIntegrityError(f"not a book event: {event!r}")
        self.sequence += 1

    # ---- state ---------------------------------------------------------

    def to_state(self) -> dict:
        """Return the book's whole state as plain values (snapshots, digests)."""
        return {
            "asset": self.spec.to_record(),
            "bids": [[o.order_id, o.owner, o.price, o.remaining] for o in self.orders_in_priority(BUY)],
            "asks": [[o.order_id, o.owner, o.price, o.remaining] for o in self.orders_in_priority(SELL)],
            "trade_sequence": self.trade_sequence,
            "sequence": self.sequence,
            "last_price": self.last_price,
            "tape": [list(trade) for trade in self.tape],
            "tape_size": self.tape.maxlen,
        }

    @classmethod
    def from_state(cls, state: dict) -> OrderBook:
        """Rebuild a book from `to_state`'s values."""
        book = cls(AssetSpec.from_record(state["asset"]), tape_size=state["tape_size"])
        for side, key in ((BUY, "bids"), (SELL, "asks")):
            for order_id, owner, price, remaining in state[key]:
                book._rest(OrderRested(order_id, owner, side, price, remaining, 0))
        book.trade_sequence = state["trade_sequence"]
        book.sequence = state["sequence"]
        book.last_price = state["last_price"]
        book.tape.extend(TradeExecuted(*trade) for trade in state["tape"])
        return book

    # ---- internals -----------------------------------------------------

    def _crosses(self, side: str, price: int) -> bool:
        if side == BUY:
            return bool(self._ask_keys) and -self._ask_keys[-1] <= price
        return bool(self._bid_prices) and self._bid_prices[-1] >= price

    def _can_fill(self, side: str, limit: int | None, quantity: int, owner: str, budget: int | None) -> bool:
        """Tell whether `quantity` can execute before meeting the owner's own order."""
        if side == BUY:
            levels = (self._asks[-key] for key in reversed(self._ask_keys))
        else:
            levels = (self._bids[price] for price in reversed(self._bid_prices))
        unit_money = self.spec.money_per_tick_lot
        needed = quantity
        for level in levels:
            price = level.price
            if limit is not None and (price > limit if side == BUY else price < limit):
                return False
            for maker in level.orders:
                if not maker.remaining:
                    continue
                if maker.owner == owner:
                    return False
                fill = min(maker.remaining, needed)
                if budget is not None:
                    fill = min(fill, budget // (price * unit_money))
                    if not fill:
                        return False
                    budget -= fill * price * unit_money
                needed -= fill
                if not needed:
                    return True
        return False

    def _match(self, order_id: int, owner: str, side: str, limit: int | None, quantity: int,
               budget: int | None, timestamp: int, events: list) -> tuple[int, str | None]:
        """Trade against the opposite side; return the unfilled quantity and why it stopped early."""
        if side == BUY:
            levels, keys, sign = self._asks, self._ask_keys, -1
        else:
            levels, keys, sign = self._bids, self._bid_prices, 1
        orders = self._orders
        unit_money = self.spec.money_per_tick_lot
        remaining = quantity
        stop = None
        trade_sequence = self.trade_sequence
        tape_append = self.tape.append
        price = None
        while remaining and keys:
            price = keys[-1] * sign
            if limit is not None and (price > limit if side == BUY else price < limit):
                break
            level = levels[price]
            queue = level.orders
            while remaining:
                maker = queue[0]
                if not maker.remaining:
                    queue.popleft()
                    continue
                if maker.owner == owner:
                    stop = _SELF_TRADE
                    break
                fill = maker.remaining if maker.remaining < remaining else remaining
                if budget is not None:
                    affordable = budget // (price * unit_money)
                    if affordable < fill:
                        if not affordable:
                            stop = _OUT_OF_BUDGET
                            break
                        fill = affordable
                    budget -= fill * price * unit_money
                remaining -= fill
                trade_sequence += 1
                trade = TradeExecuted(trade_sequence, price, fill, side, order_id, owner,
                                      maker.order_id, maker.owner, timestamp)
                events.append(trade)
                tape_append(trade)
                if maker.remaining == fill:
                    maker.remaining = 0
                    queue.popleft()
                    del orders[maker.order_id]
                    level.quantity -= fill
                    level.count -= 1
                    if not level.count:
                        del levels[price]
                        keys.pop()
                        break
                else:
                    maker.remaining -= fill
                    level.quantity -= fill
            if stop is not None:
                break
        if trade_sequence != self.trade_sequence:
            self.sequence += trade_sequence - self.trade_sequence
            self.trade_sequence = trade_sequence
            self.last_price = events[-1].price
        return remaining, stop

    def _close(self, order_id: int, owner: str, status: str, reason: str | None, filled: int,
               timestamp: int, events: list) -> SubmitResult:
        events.append(OrderClosed(order_id, owner, status, reason, timestamp))
        self.sequence += 1
        return SubmitResult(order_id, status, reason, filled, events)

    def _rest(self, rested: OrderRested) -> None:
        price = rested.price
        if rested.side == BUY:
            levels, keys, key = self._bids, self._bid_prices, price
        else:
            levels, keys, key = self._asks, self._ask_keys, -price
        level = levels.get(price)
        if level is None:
            level = levels[price] = PriceLevel(price)
            insort(keys, key)
        order = RestingOrder(rested.order_id, rested.owner, rested.side, price, rested.quantity)
        level.append(order)
        self._orders[rested.order_id] = order

    def _remove(self, order: RestingOrder) -> None:
        if order.side == BUY:
            levels, keys, key = self._bids, self._bid_prices, order.price
        else:
            levels, keys, key = self._asks, self._ask_keys, -order.price
        level = levels[order.price]
        level.remove(order)
        del self._orders[order.order_id]
        if not level.count:
            del levels[order.price]
            del keys[bisect_left(keys, key)]

    def _record_trade(self, trade: TradeExecuted) -> None:
        self.trade_sequence = trade.trade_id
        self.last_price = trade.price
        self.tape.append(trade)
