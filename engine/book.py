"""One asset's limit order book: price-time priority matching.

The book is the authority on which orders are open. It owns its price levels
and resting orders and nothing else: it holds no money and knows no accounts
beyond the owner name on each order, which it needs for self-trade prevention.
Every mutation returns the events it caused, and `apply` rebuilds the same
book from them. Prices are integer ticks, quantities integer lots; a market
buy may carry a budget in money units and stops before a fill it cannot pay.

Invariants: `_orders` maps exactly the live resting orders' ids to their
entries (see `book_level`); a price has a `PriceLevel` in `_bids`/`_asks`
exactly when a live order rests there, and its key is then in `_bid_prices`
(ascending) or `_ask_keys` (negated prices, ascending), so the best price is
always last; `sequence` counts every event returned, `trade_sequence` every
trade. Queries return `RestingOrder` snapshots, never the entries themselves.

`submit_limit` (good till cancelled) and `submit_market` (immediate or cancel,
no budget) are the matching hot path: they check what `submit` checks and then
skip its general branches; everything else goes through `submit`.

Stops (`submit_stop`) wait off the book in `stops` (engine/stops.py). After an
order's matching, the stops its trades triggered enter matching one after the
other, each as a new order (`StopTriggered`, then its own events), and those
that their trades trigger join the end of the queue, until none is left: the
cascade (`_cascade`) ends inside the command that started it, and its events
come back in the result's `cascade`. `amend` shrinks an order in place or
moves it to a new price, where it enters again like a new order.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from typing import Any

from engine.book_level import OWNER, PRICE, REMAINING, SIDE, LevelRow, PriceLevel, RestingOrder, can_fill
from engine.book_stops import _NO_CASCADE, StopsAndAmends, SubmitResult
from engine.errors import BookIntegrityError, RejectReason
from engine.events import (
    AmendRefused, OrderAmended, OrderClosed, OrderRested, StopAccepted, StopTriggered, TradeExecuted,
)
from engine.numbers import AssetSpec
from engine.orders import CloseReason, OrderStatus, TimeInForce
from engine.stops import WaitingStops

BUY = "buy"
SELL = "sell"
DEFAULT_TAPE_SIZE = 1000
# Plain str values, read once: an Enum member's `.value` is a Python-level descriptor call.
_GTC, _IOC, _FOK = TimeInForce.GTC.value, TimeInForce.IOC.value, TimeInForce.FOK.value
_CONFIRMED, _PROCESSING = OrderStatus.CONFIRMED.value, OrderStatus.PROCESSING.value
_COMPLETED, _CANCELLED, _FAILED = (OrderStatus.COMPLETED.value, OrderStatus.CANCELLED.value,
                                   OrderStatus.FAILED.value)
_SELF_TRADE, _OUT_OF_BUDGET, _NO_LIQUIDITY = (CloseReason.SELF_TRADE_PREVENTED.value,
                                              CloseReason.INSUFFICIENT_FUNDS.value,
                                              CloseReason.NO_LIQUIDITY.value)
_IOC_EXPIRED, _FOK_UNFILLABLE = CloseReason.IOC_EXPIRED.value, CloseReason.FOK_UNFILLABLE.value
_POST_ONLY, _USER_CANCELLED = CloseReason.POST_ONLY_WOULD_MATCH.value, CloseReason.USER_CANCELLED.value
_NOT_OPEN = RejectReason.ORDER_NOT_OPEN
# A NamedTuple's generated __new__ is a Python function around this very call;
# calling it directly builds the same value at less than half the cost.
_new = tuple.__new__


class OrderBook(StopsAndAmends):
    """Price levels for one asset: bids best-last ascending, asks by negated price."""

    def __init__(self, spec: AssetSpec, tape_size: int = DEFAULT_TAPE_SIZE) -> None:
        self.spec = spec
        self._bids: dict[int, PriceLevel] = {}
        self._bid_prices: list[int] = []  # ascending: the best bid is last
        self._asks: dict[int, PriceLevel] = {}
        self._ask_keys: list[int] = []  # negated prices ascending: the best ask is last
        self._orders: dict[int, tuple] = {}  # order id -> its live entry
        self.trade_sequence = 0
        self.sequence = 0
        self.last_price: int | None = None
        self.tape: deque[TradeExecuted] = deque(maxlen=tape_size)
        self.stops = WaitingStops()
        self._waiting = self.stops.entries  # the same dict, one attribute look-up nearer for `_take`
        self._cascading = False  # inside `_cascade`: triggered stops queue there, not here

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
        """Return a snapshot of the resting order with this id, or None."""
        entry = self._orders.get(order_id)
        return None if entry is None else RestingOrder(*entry)

    def open_order_count(self) -> int:
        return len(self._orders)

    def depth(self, levels: int = 20) -> tuple[list[LevelRow], list[LevelRow]]:
        """Return aggregated levels, best first: (bids, asks)."""
        bids = [self._bids[price].row() for price in reversed(self._bid_prices[-levels:])]
        asks = [self._asks[-key].row() for key in reversed(self._ask_keys[-levels:])]
        return bids, asks

    def orders_in_priority(self, side: str) -> list[RestingOrder]:
        """Return snapshots of one side's orders, best price first, then time priority."""
        return [RestingOrder(*entry) for level in self._levels_in_priority(side)
                for entry in level.live(self._orders)]

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
        if post_only and self._crosses(side, price):
            return self._close(order_id, owner, _FAILED, _POST_ONLY, 0, timestamp, [])
        if time_in_force == _FOK and not self._can_fill(side, price, quantity, owner, budget):
            return self._close(order_id, owner, _CANCELLED, _FOK_UNFILLABLE, 0, timestamp, [])
        return self._take(order_id, owner, side, quantity, price, time_in_force, budget, timestamp)

    def submit_limit(self, order_id: int, owner: str, side: str, price: int, quantity: int,
                     time_in_force: str = _GTC, post_only: bool = False,
                     timestamp: int = 0) -> SubmitResult | RejectReason:
        """Submit a limit order."""
        if time_in_force != _GTC or post_only or price is None:
            return self.submit(order_id, owner, side, quantity, price=price, time_in_force=time_in_force,
                               post_only=post_only, timestamp=timestamp)
        if quantity <= 0:
            return RejectReason.INVALID_QUANTITY
        orders = self._orders
        if order_id in orders:
            return RejectReason.DUPLICATE_ORDER_ID
        if price <= 0:
            return RejectReason.INVALID_PRICE
        # Most limits rest without crossing: one comparison with the best opposite price
        # tells, and then `_rest` is written out here, as one call less is a measurable
        # share of the whole message.
        if side == BUY:
            opposite = self._ask_keys
            if opposite and -opposite[-1] <= price:
                return self._take(order_id, owner, side, quantity, price, _GTC, None, timestamp)
            levels, keys, key = self._bids, self._bid_prices, price
        else:
            opposite = self._bid_prices
            if opposite and opposite[-1] >= price:
                return self._take(order_id, owner, side, quantity, price, _GTC, None, timestamp)
            levels, keys, key = self._asks, self._ask_keys, -price
        # `_rest` inlined: a limit that rests at once is the most common message, and the
        # call is a measurable share of it.
        level = levels.get(price)
        if level is None:
            level = levels[price] = PriceLevel(price)
            insort(keys, key)
        level.orders.append(entry := (order_id, owner, side, price, quantity))
        level.quantity += quantity
        level.count += 1
        orders[order_id] = entry
        self.sequence += 1
        rested = _new(OrderRested, (order_id, owner, side, price, quantity, timestamp))
        return _new(SubmitResult, (order_id, _CONFIRMED, None, 0, [rested], _NO_CASCADE))

    def submit_market(self, order_id: int, owner: str, side: str, quantity: int,
                      time_in_force: str = _IOC, budget: int | None = None,
                      timestamp: int = 0) -> SubmitResult | RejectReason:
        """Submit a market order (IOC or FOK), a buy optionally limited by a money budget."""
        if time_in_force != _IOC or budget is not None:
            return self.submit(order_id, owner, side, quantity, time_in_force=time_in_force,
                               budget=budget, timestamp=timestamp)
        if quantity <= 0:
            return RejectReason.INVALID_QUANTITY
        if order_id in self._orders:
            return RejectReason.DUPLICATE_ORDER_ID
        return self._take(order_id, owner, side, quantity, None, _IOC, None, timestamp)

    def cancel(self, order_id: int, timestamp: int = 0, reason: str = _USER_CANCELLED) -> OrderClosed | RejectReason:
        """Take a resting order off the book, or a waiting stop off its list, closed for `reason`
        (a CloseReason value)."""
        entry = self._orders.get(order_id)
        if entry is None:
            entry = self.stops.remove(order_id) if self.stops.entries else None
            if entry is None:
                return _NOT_OPEN
        else:
            self._remove(entry)
        self.sequence += 1
        return _new(OrderClosed, (order_id, entry[OWNER], _CANCELLED, reason, timestamp))

    # ---- replay --------------------------------------------------------

    def apply(self, event: Any) -> None:
        """Apply one of this book's events, as recorded, to rebuild its state."""
        kind = type(event)
        if kind is TradeExecuted:
            maker = self._orders.get(event.maker_order_id)
            if maker is None or maker[REMAINING] < event.quantity or maker[PRICE] != event.price:
                raise BookIntegrityError(f"trade {event.trade_id} does not match its maker order")
            if maker[REMAINING] == event.quantity:
                self._remove(maker)
            else:
                level = (self._bids if maker[SIDE] == BUY else self._asks)[event.price]
                level.quantity -= event.quantity
                self._orders[event.maker_order_id] = level.replace(maker, maker[REMAINING] - event.quantity)
            self.trade_sequence = event.trade_id
            self.last_price = event.price
            self.tape.append(event)
        elif kind is OrderRested:
            if event.order_id in self._orders:
                raise BookIntegrityError(f"order {event.order_id} rests twice")
            self._rest(event.order_id, event.owner, event.side, event.price, event.quantity)
        elif kind is OrderClosed:
            entry = self._orders.get(event.order_id)
            if entry is not None:
                self._remove(entry)
            else:
                self.stops.remove(event.order_id)
        elif kind is StopAccepted:
            self.stops.add(event.order_id, event.owner, event.side, event.stop_kind, event.stop_price,
                           event.price, event.quantity, event.time_in_force)
        elif kind is StopTriggered:
            if self.stops.remove(event.order_id) is None:
                raise BookIntegrityError(f"stop {event.order_id} triggered but not waiting")
        elif kind is OrderAmended:
            self._apply_amended(event)
        elif kind is AmendRefused:
            pass
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
            **self.stops.to_state(),
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
        book.stops.load_state(state)
        return book

    # ---- internals -----------------------------------------------------

    def _levels_in_priority(self, side: str) -> list[PriceLevel]:
        if side == BUY:
            return [self._bids[price] for price in reversed(self._bid_prices)]
        return [self._asks[-key] for key in reversed(self._ask_keys)]

    def _crosses(self, side: str, price: int) -> bool:
        if side == BUY:
            return bool(self._ask_keys) and -self._ask_keys[-1] <= price
        return bool(self._bid_prices) and self._bid_prices[-1] >= price

    def _can_fill(self, side: str, limit: int | None, quantity: int, owner: str, budget: int | None) -> bool:
        """Tell whether `quantity` can execute before meeting the owner's own order."""
        reachable = [level for level in self._levels_in_priority(SELL if side == BUY else BUY)
                     if limit is None or (level.price <= limit if side == BUY else level.price >= limit)]
        return can_fill(reachable, self._orders, quantity, owner, budget, self.spec.money_per_tick_lot)

    def _take(self, order_id: int, owner: str, side: str, quantity: int, limit: int | None,
              time_in_force: str, budget: int | None, timestamp: int) -> SubmitResult:
        """Trade a validated order against the opposite side, then close it or rest what is left."""
        if side == BUY:
            levels, keys, sign = self._asks, self._ask_keys, -1
        else:
            levels, keys, sign = self._bids, self._bid_prices, 1
        orders = self._orders
        entry_of = orders.get
        remaining = quantity
        stop = None
        trade_sequence = self.trade_sequence
        events: list = []
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
                maker_id, maker_owner, maker_side, _, maker_left = maker
                if entry_of(maker_id) is not maker:  # dead: cancelled while queued
                    queue.popleft()
                    continue
                if maker_owner == owner:
                    stop = _SELF_TRADE
                    break
                fill = maker_left if maker_left < remaining else remaining
                if budget is not None:
                    lot_cost = price * self.spec.money_per_tick_lot
                    affordable = budget // lot_cost
                    if affordable < fill:
                        if not affordable:
                            stop = _OUT_OF_BUDGET
                            break
                        fill = affordable
                    budget -= fill * lot_cost
                remaining -= fill
                trade_sequence += 1
                trade = _new(TradeExecuted, (trade_sequence, price, fill, side, order_id, owner,
                                             maker_id, maker_owner, timestamp))
                append(trade)
                tape_append(trade)
                level.quantity -= fill
                if maker_left == fill:
                    queue.popleft()
                    del orders[maker_id]
                    level.count -= 1
                    if not level.count:
                        del levels[price]
                        keys.pop()
                        break
                else:  # entries are immutable: the maker keeps its place under a new one
                    queue[0] = orders[maker_id] = (maker_id, maker_owner, maker_side, price,
                                                   maker_left - fill)
            if stop is not None:
                break
        triggers = False
        if events:
            self.sequence += trade_sequence - self.trade_sequence
            self.trade_sequence = trade_sequence
            self.last_price = events[-1].price
            triggers = self._waiting and not self._cascading
        filled = quantity - remaining
        if stop is None:
            if not remaining:
                result = self._close(order_id, owner, _COMPLETED, None, filled, timestamp, events)
                return self._after_trades(result, timestamp) if triggers else result
            if limit is None:
                stop = _NO_LIQUIDITY
            elif time_in_force != _GTC:
                stop = _IOC_EXPIRED if time_in_force == _IOC else _FOK_UNFILLABLE
            else:
                self._rest(order_id, owner, side, limit, remaining)
                append(_new(OrderRested, (order_id, owner, side, limit, remaining, timestamp)))
                self.sequence += 1
                result = _new(SubmitResult, (order_id, _PROCESSING if filled else _CONFIRMED, None, filled,
                                             events, _NO_CASCADE))
                return self._after_trades(result, timestamp) if triggers else result
        result = self._close(order_id, owner, _CANCELLED, stop, filled, timestamp, events)
        return self._after_trades(result, timestamp) if triggers else result

    def _close(self, order_id: int, owner: str, status: str, reason: str | None, filled: int,
               timestamp: int, events: list) -> SubmitResult:
        events.append(_new(OrderClosed, (order_id, owner, status, reason, timestamp)))
        self.sequence += 1
        return _new(SubmitResult, (order_id, status, reason, filled, events, _NO_CASCADE))

    def _rest(self, order_id: int, owner: str, side: str, price: int, quantity: int) -> None:
        if side == BUY:
            levels, keys, key = self._bids, self._bid_prices, price
        else:
            levels, keys, key = self._asks, self._ask_keys, -price
        level = levels.get(price)
        if level is None:
            level = levels[price] = PriceLevel(price)
            insort(keys, key)
        level.orders.append(entry := (order_id, owner, side, price, quantity))
        level.quantity += quantity
        level.count += 1
        self._orders[order_id] = entry

    def _remove(self, entry: tuple) -> None:
        """Take a live order off the book; its entry stays queued, dead (see book_level)."""
        order_id, _, side, price, remaining = entry
        if side == BUY:
            levels, keys, key = self._bids, self._bid_prices, price
        else:
            levels, keys, key = self._asks, self._ask_keys, -price
        del self._orders[order_id]
        level = levels[price]
        level.quantity -= remaining
        level.count -= 1
        if not level.count:
            del levels[price]
            del keys[bisect_left(keys, key)]
        elif len(level.orders) > 2 * level.count + 32:
            level.drop_dead(self._orders)

