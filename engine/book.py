"""One asset's limit order book: price-time priority matching.

The book is the authority on which orders are open. It owns its price levels
and resting orders and nothing else: it holds no money and knows no accounts
beyond the owner name on each order, which it needs for self-trade prevention.
Every mutation returns the events it caused, and `apply` rebuilds the same
book from them. Prices are integer ticks, quantities integer lots; a market
buy may carry a budget in money units and stops before a fill it cannot pay.

Invariants: a price has a `PriceLevel` in `_bids`/`_asks` exactly when some
live order rests there, and its key is then in `_bid_prices` (ascending) or
`_ask_keys` (negated prices, ascending), so the best price is always last;
`_orders` holds exactly the live resting orders; `sequence` counts every event
returned, `trade_sequence` every trade.

`submit_limit` (good till cancelled) and `submit_market` (immediate or cancel,
no budget) are the matching hot path and run on their own short paths; every
other combination goes through `submit`, which decides the same way.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from typing import Any, NamedTuple

from engine.book_level import PriceLevel, RestingOrder, new_resting_order

_allocate = object.__new__
from engine.errors import BookIntegrityError, RejectReason
from engine.events import OrderClosed, OrderRested, TradeExecuted
from engine.numbers import AssetSpec
from engine.orders import CloseReason, OrderStatus, TimeInForce

BUY = "buy"
SELL = "sell"
DEFAULT_TAPE_SIZE = 1000
# Plain str values, read once: an Enum member's `.value` is a Python-level descriptor call.
_GTC, _IOC, _FOK = TimeInForce.GTC.value, TimeInForce.IOC.value, TimeInForce.FOK.value
_CONFIRMED = OrderStatus.CONFIRMED.value
_PROCESSING = OrderStatus.PROCESSING.value
_COMPLETED = OrderStatus.COMPLETED.value
_CANCELLED = OrderStatus.CANCELLED.value
_FAILED = OrderStatus.FAILED.value
_SELF_TRADE = CloseReason.SELF_TRADE_PREVENTED.value
_OUT_OF_BUDGET = CloseReason.INSUFFICIENT_FUNDS.value
_NO_LIQUIDITY = CloseReason.NO_LIQUIDITY.value
_IOC_EXPIRED = CloseReason.IOC_EXPIRED.value
_FOK_UNFILLABLE = CloseReason.FOK_UNFILLABLE.value
_POST_ONLY = CloseReason.POST_ONLY_WOULD_MATCH.value
_USER_CANCELLED = CloseReason.USER_CANCELLED.value
# A NamedTuple's generated __new__ is a Python function wrapped around this very
# call; calling it directly builds the same value at about half the cost.
_new = tuple.__new__


class SubmitResult(NamedTuple):
    """What matching did with one incoming order; `events` ends with its outcome."""

    order_id: int
    status: str
    reason: str | None
    filled_quantity: int
    events: list

    @property
    def trades(self) -> list[TradeExecuted]:
        return self[4][:-1]


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
        bids = [self._bids[price].row() for price in reversed(self._bid_prices[-levels:])]
        asks = [self._asks[-key].row() for key in reversed(self._ask_keys[-levels:])]
        return bids, asks

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
            return self._close(order_id, owner, _FAILED, _POST_ONLY, 0, timestamp, events)
        if time_in_force == _FOK and not self._can_fill(side, price, quantity, owner, budget):
            return self._close(order_id, owner, _CANCELLED, _FOK_UNFILLABLE, 0, timestamp, events)

        remaining, stop = self._match(order_id, owner, side, price, quantity, budget, timestamp, events)
        filled = quantity - remaining
        if stop is not None:
            return self._close(order_id, owner, _CANCELLED, stop, filled, timestamp, events)
        if not remaining:
            return self._close(order_id, owner, _COMPLETED, None, filled, timestamp, events)
        if price is None:
            return self._close(order_id, owner, _CANCELLED, _NO_LIQUIDITY, filled, timestamp, events)
        if time_in_force != _GTC:
            reason = _IOC_EXPIRED if time_in_force == _IOC else _FOK_UNFILLABLE
            return self._close(order_id, owner, _CANCELLED, reason, filled, timestamp, events)
        return self._rest_remainder(order_id, owner, side, price, remaining, filled, timestamp, events)

    def submit_limit(self, order_id: int, owner: str, side: str, price: int, quantity: int,
                     time_in_force: str = _GTC, post_only: bool = False,
                     timestamp: int = 0) -> SubmitResult | RejectReason:
        """Submit a limit order."""
        if time_in_force != _GTC or post_only or price is None:
            return self.submit(order_id, owner, side, quantity, price=price, time_in_force=time_in_force,
                               post_only=post_only, timestamp=timestamp)
        # A plain GTC limit: the checks and outcomes of `submit`, without its general branches.
        if quantity <= 0:
            return RejectReason.INVALID_QUANTITY
        if order_id in self._orders:
            return RejectReason.DUPLICATE_ORDER_ID
        if price <= 0:
            return RejectReason.INVALID_PRICE
        if side == BUY:
            opposite = self._ask_keys
            if opposite and -opposite[-1] <= price:
                return self._take_limit(order_id, owner, side, price, quantity, timestamp)
            levels, keys, key = self._bids, self._bid_prices, price
        else:
            opposite = self._bid_prices
            if opposite and opposite[-1] >= price:
                return self._take_limit(order_id, owner, side, price, quantity, timestamp)
            levels, keys, key = self._asks, self._ask_keys, -price
        # Most limits rest untouched, so this is `_rest_remainder` written out in place:
        # each call saved here is a measurable share of the whole message.
        level = levels.get(price)
        if level is None:
            level = levels[price] = PriceLevel(price)
            insort(keys, key)
        order = _allocate(RestingOrder)
        order.order_id = order_id
        order.owner = owner
        order.side = side
        order.price = price
        order.remaining = quantity
        level.orders.append(order)
        level.quantity += quantity
        level.count += 1
        self._orders[order_id] = order
        self.sequence += 1
        rested = _new(OrderRested, (order_id, owner, side, price, quantity, timestamp))
        return _new(SubmitResult, (order_id, _CONFIRMED, None, 0, [rested]))

    def submit_market(self, order_id: int, owner: str, side: str, quantity: int,
                      time_in_force: str = _IOC, budget: int | None = None,
                      timestamp: int = 0) -> SubmitResult | RejectReason:
        """Submit a market order (IOC or FOK), a buy optionally limited by a money budget."""
        if time_in_force != _IOC or budget is not None:
            return self.submit(order_id, owner, side, quantity, time_in_force=time_in_force,
                               budget=budget, timestamp=timestamp)
        # A market IOC without budget: the checks and outcomes of `submit`, without its general branches.
        if quantity <= 0:
            return RejectReason.INVALID_QUANTITY
        if order_id in self._orders:
            return RejectReason.DUPLICATE_ORDER_ID
        events: list = []
        remaining, stop = self._match(order_id, owner, side, None, quantity, None, timestamp, events)
        if stop is None and remaining:
            stop = _NO_LIQUIDITY
        status = _COMPLETED if stop is None else _CANCELLED
        return self._close(order_id, owner, status, stop, quantity - remaining, timestamp, events)

    def cancel(self, order_id: int, timestamp: int = 0) -> OrderClosed | RejectReason:
        """Take a resting order off the book."""
        order = self._orders.get(order_id)
        if order is None:
            return RejectReason.ORDER_NOT_OPEN
        self._remove(order)
        self.sequence += 1
        return _new(OrderClosed, (order_id, order.owner, _CANCELLED, _USER_CANCELLED, timestamp))

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
            self._rest(event.order_id, event.owner, event.side, event.price, event.quantity)
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
                book._rest(order_id, owner, side, price, remaining)
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
        append = events.append
        tape_append = self.tape.append
        while remaining and keys:
            price = keys[-1] * sign
            if limit is not None and (price > limit if side == BUY else price < limit):
                break
            level = levels[price]
            queue = level.orders
            while remaining:
                maker = queue[0]
                maker_remaining = maker.remaining
                if not maker_remaining:  # cancelled: dropped lazily (see book_level)
                    queue.popleft()
                    continue
                if maker.owner == owner:
                    stop = _SELF_TRADE
                    break
                fill = maker_remaining if maker_remaining < remaining else remaining
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
                trade = _new(TradeExecuted, (trade_sequence, price, fill, side, order_id, owner,
                                             maker.order_id, maker.owner, timestamp))
                append(trade)
                tape_append(trade)
                if maker_remaining == fill:
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
                    maker.remaining = maker_remaining - fill
                    level.quantity -= fill
            if stop is not None:
                break
        if trade_sequence != self.trade_sequence:
            self.sequence += trade_sequence - self.trade_sequence
            self.trade_sequence = trade_sequence
            self.last_price = events[-1].price
        return remaining, stop

    def _take_limit(self, order_id: int, owner: str, side: str, price: int, quantity: int,
                    timestamp: int) -> SubmitResult:
        """Match a GTC limit that crosses the book; rest what is left of it."""
        events: list = []
        remaining, stop = self._match(order_id, owner, side, price, quantity, None, timestamp, events)
        filled = quantity - remaining
        if stop is not None:
            return self._close(order_id, owner, _CANCELLED, stop, filled, timestamp, events)
        if not remaining:
            return self._close(order_id, owner, _COMPLETED, None, filled, timestamp, events)
        return self._rest_remainder(order_id, owner, side, price, remaining, filled, timestamp, events)

    def _close(self, order_id: int, owner: str, status: str, reason: str | None, filled: int,
               timestamp: int, events: list) -> SubmitResult:
        events.append(_new(OrderClosed, (order_id, owner, status, reason, timestamp)))
        self.sequence += 1
        return _new(SubmitResult, (order_id, status, reason, filled, events))

    def _rest_remainder(self, order_id: int, owner: str, side: str, price: int, remaining: int,
                        filled: int, timestamp: int, events: list) -> SubmitResult:
        self._rest(order_id, owner, side, price, remaining)
        events.append(_new(OrderRested, (order_id, owner, side, price, remaining, timestamp)))
        self.sequence += 1
        return _new(SubmitResult, (order_id, _PROCESSING if filled else _CONFIRMED, None, filled, events))

    def _rest(self, order_id: int, owner: str, side: str, price: int, quantity: int) -> None:
        if side == BUY:
            levels, keys, key = self._bids, self._bid_prices, price
        else:
            levels, keys, key = self._asks, self._ask_keys, -price
        level = levels.get(price)
        if level is None:
            level = levels[price] = PriceLevel(price)
            insort(keys, key)
        order = new_resting_order(order_id, owner, side, price, quantity)
        level.orders.append(order)
        level.quantity += quantity
        level.count += 1
        self._orders[order_id] = order

    def _remove(self, order: RestingOrder) -> None:
        price = order.price
        if order.side == BUY:
            levels, keys, key = self._bids, self._bid_prices, price
        else:
            levels, keys, key = self._asks, self._ask_keys, -price
        del self._orders[order.order_id]
        level = levels[price]
        level.quantity -= order.remaining
        level.count -= 1
        order.remaining = 0  # its entry stays in the queue, dead (see book_level)
        if not level.count:
            del levels[price]
            del keys[bisect_left(keys, key)]
        elif len(level.orders) > 2 * level.count + 32:
            level.drop_dead()

    def _record_trade(self, trade: TradeExecuted) -> None:
        self.trade_sequence = trade.trade_id
        self.last_price = trade.price
        self.tape.append(trade)
