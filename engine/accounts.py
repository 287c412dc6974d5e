"""The accounts of one shard: balances, holds and open orders — the hot state.

An `Accounts` is owned by exactly one account shard, the only writer of the
accounts in it. Each balance is `available + held` per asset; `held` always
equals what the owner's open orders still reserve (money units of USD for a
buy, lots of the asset for a sell). Commands check first and return a
`RejectReason` without changing anything, or the events they caused, already
applied through `apply` — the single mutation path, so replaying the events
into an empty `Accounts` rebuilds the same state.

Memory holds what decides the next command, never history: an order that
closes leaves `orders` and each fill's `Transaction` is made, and both wait in
`closed_orders` and `new_transactions` until the owner takes them
(`take_history`) and keeps them elsewhere (the shard: on disk).

Settlements from a book arrive numbered per asset; batch n is applied only
right after n-1, so nothing is applied twice or out of order.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from engine.account_amends import AccountAmends
from engine.errors import EngineError, RejectReason
from engine.events import (
    AmendAborted, AmendRefused, AmendRequested, AssetListed, FundsDeposited, FundsHeld, FundsWithdrawn,
    OrderAborted, OrderAccepted, OrderAmended, OrderClosed, OrderHeld, OrderRested, SettlementApplied,
    StopAccepted, StopTriggered, TradeExecuted, decode_event,
)
from engine.numbers import MAX_UNITS, USD, AssetSpec
from engine.orders import (
    ORDER_TYPES, STATUSES, TIMES_IN_FORCE, CloseReason, OrderRecord, OrderStatus, OrderType, Side,
    TimeInForce, check_order_shape,
)

_AVAILABLE, _HELD, _UPDATED = 0, 1, 2  # the fields of a balance entry, a list mutated in place


class Balance(NamedTuple):
    """One account's balance in one asset: money units for USD, lots otherwise."""

    available: int
    held: int
    updated_at: int  # µs since the epoch; 0 for an asset never held


class Transaction(NamedTuple):
    """One side of one fill, as its account sees it."""

    transaction_id: str
    username: str
    asset_id: str
    transaction_type: str  # "BUY" or "SELL"
    quantity: int
    price: int
    total_amount: int
    order_id: int
    timestamp: int


class Accounts(AccountAmends):
    """Balances, holds and open orders (waiting stops among them) of a set of accounts."""

    def __init__(self) -> None:
        self.assets: dict[str, AssetSpec] = {}
        # username -> asset_id -> [available, held, updated_at]
        self.balances: dict[str, dict[str, list[int]]] = {}
        self.orders: dict[int, OrderRecord] = {}  # open orders: pending, confirmed, processing
        self.orders_by_user: dict[str, dict[int, None]] = {}  # open order ids per user, oldest first
        self.client_order_ids: dict[tuple[str, str], int] = {}  # of open orders
        self.last_order_id = 0  # the highest order id ever accepted
        self.settlement_sequences: dict[str, int] = {}
        # asset_id -> deposits minus withdrawals, the total every balance must add up to
        self.net_deposits: dict[str, int] = {}
        self.amends: dict[int, AmendRequested] = {}  # order id -> its amend on the way to the book
        # History made since the owner last took it (see `take_history`).
        self.closed_orders: list[OrderRecord] = []
        self.new_transactions: list[Transaction] = []

    # ---- commands ------------------------------------------------------

    def list_asset(self, spec: AssetSpec) -> list | RejectReason:
        """Make an asset known to these accounts."""
        if spec.asset_id in self.assets or spec.asset_id == USD:
            return RejectReason.ASSET_EXISTS
        return self._emit([AssetListed(*spec.to_record())])

    def deposit(self, username: str, asset_id: str, amount: int, timestamp: int) -> list | RejectReason:
        """Credit `amount` (money units for USD, lots otherwise) to available; refused if the
        balance would then be more than the journal's 64-bit integers hold (`MAX_UNITS`)."""
        reason = self._check_amount(asset_id, amount)
        if reason is not None:
            return reason
        balance = self.balance(username, asset_id)
        if balance.available + balance.held + amount > MAX_UNITS:
            return RejectReason.INVALID_AMOUNT
        return self._emit([FundsDeposited(username, asset_id, amount, timestamp)])

    def withdraw(self, username: str, asset_id: str, amount: int, timestamp: int) -> list | RejectReason:
        """Debit `amount` from available, never from held."""
        reason = self._check_amount(asset_id, amount)
        if reason is not None:
            return reason
        if self.balance(username, asset_id).available < amount:
            return RejectReason.INSUFFICIENT_BALANCE
        return self._emit([FundsWithdrawn(username, asset_id, amount, timestamp)])

    def place_order(
        self, order_id: int, username: str, asset_id: str, order_type: OrderType,
        time_in_force: TimeInForce, post_only: bool, quantity: int, price: int | None,
        client_order_id: str | None, description: str | None, timestamp: int,
        stop_price: int | None = None, stop_kind: str | None = None,
    ) -> list | RejectReason:
        """Record a new order (a stop order too: it holds what the same order without a stop
        would) and hold the funds it needs; it awaits its book."""
        spec = self.assets.get(asset_id)
        if spec is None:
            return RejectReason.UNKNOWN_ASSET
        if order_id in self.orders:
            return RejectReason.DUPLICATE_ORDER_ID
        if client_order_id is not None and (username, client_order_id) in self.client_order_ids:
            return RejectReason.DUPLICATE_CLIENT_ORDER_ID
        if quantity <= 0:
            return RejectReason.INVALID_QUANTITY
        misshapen = check_order_shape(order_type, time_in_force, post_only, price is not None,
                                      stop_price is not None, stop_kind)
        if misshapen is not None:
            return misshapen.reason
        if (price is not None and not 0 < price <= MAX_UNITS) or (
                stop_price is not None and not 0 < stop_price <= MAX_UNITS):
            return RejectReason.INVALID_PRICE

        if order_type.side == Side.SELL:
            held_asset, amount = asset_id, quantity
        elif order_type.is_market:
            held_asset, amount = USD, self.balance(username, USD).available
        else:
            held_asset, amount = USD, spec.notional(price, quantity)
        available = self.balance(username, held_asset).available
        if amount <= 0 or available < amount:
            return RejectReason.INSUFFICIENT_BALANCE
        return self._emit([
            OrderAccepted(order_id, username, asset_id, order_type.value, time_in_force.value,
                          post_only, quantity, price, client_order_id, description, timestamp,
                          stop_price, stop_kind),
            FundsHeld(order_id, username, held_asset, amount),
        ])

    def settle(self, asset_id: str, settlement_sequence: int, book_events: tuple) -> list | RejectReason:
        """Apply a book's numbered settlement batch: fills, rests and closes of our orders."""
        applied = self.settlement_sequences.get(asset_id, 0)
        if settlement_sequence <= applied:
            return RejectReason.SETTLEMENT_ALREADY_APPLIED
        if settlement_sequence != applied + 1:
            return RejectReason.SETTLEMENT_OUT_OF_ORDER
        return self._emit([SettlementApplied(asset_id, settlement_sequence, tuple(book_events))])

    def abort_order(self, order_id: int, timestamp: int) -> list | RejectReason:
        """Fail an order that never reached its book and release its hold."""
        order = self.orders.get(order_id)
        if order is None:
            return RejectReason.ORDER_NOT_FOUND
        if order.status != OrderStatus.PENDING:
            return RejectReason.ORDER_NOT_OPEN
        return self._emit([OrderAborted(order_id, CloseReason.RECOVERY_ABORTED.value, timestamp)])

    # ---- queries -------------------------------------------------------

    def balance(self, username: str, asset_id: str) -> Balance:
        """Return the balance; zeros for an asset never held."""
        entry = self.balances.get(username, {}).get(asset_id)
        return Balance(*entry) if entry else Balance(0, 0, 0)

    def user_balances(self, username: str) -> dict[str, Balance]:
        """Return every balance of one user, by asset."""
        return {asset_id: Balance(*entry) for asset_id, entry in self.balances.get(username, {}).items()}

    def user_order(self, username: str, order_id: int) -> OrderRecord | None:
        """Return the user's own order, or None for an unknown or another user's id."""
        order = self.orders.get(order_id)
        return order if order is not None and order.username == username else None

    def order_by_client_id(self, username: str, client_order_id: str) -> OrderRecord | None:
        """Return the user's order with this client order id, or None."""
        order_id = self.client_order_ids.get((username, client_order_id))
        return None if order_id is None else self.orders[order_id]

    def pending_orders(self) -> list[OrderRecord]:
        """Return orders that were accepted but have no word from their book yet (a waiting
        stop has had its book's word)."""
        return [order for order in self.orders.values()
                if order.status == OrderStatus.PENDING and not order.stop_waiting and order.triggered_at is None]

    def take_history(self) -> tuple[list[OrderRecord], list[Transaction]]:
        """Hand over the orders closed and the transactions made since the last call."""
        closed, transactions = self.closed_orders, self.new_transactions
        self.closed_orders, self.new_transactions = [], []
        return closed, transactions

    # ---- state ---------------------------------------------------------

    def to_state(self) -> dict:
        """Return the hot state as plain values (snapshots, digests); history is not in it."""
        return {
            "assets": [spec.to_record() for spec in self.assets.values()],
            "balances": {user: {asset: list(entry) for asset, entry in sorted(assets.items())}
                         for user, assets in sorted(self.balances.items())},
            "orders": list(map(OrderRecord.fields, self.orders.values())),
            "last_order_id": self.last_order_id,
            "settlement_sequences": dict(sorted(self.settlement_sequences.items())),
            "net_deposits": dict(sorted(self.net_deposits.items())),
            "amends": [list(amend) for amend in self.amends.values()],
        }

    @classmethod
    def from_state(cls, state: dict) -> Accounts:
        """Rebuild accounts from `to_state`'s values.

        A state written before history left memory also holds closed orders and every
        transaction: they come out as history not yet taken, for the owner to keep."""
        accounts = cls()
        for record in state["assets"]:
            spec = AssetSpec.from_record(record)
            accounts.assets[spec.asset_id] = spec
        accounts.balances = {user: {asset: list(entry) for asset, entry in assets.items()}
                             for user, assets in state["balances"].items()}
        for record in state["orders"]:
            order = OrderRecord.from_record(record)
            accounts.last_order_id = max(accounts.last_order_id, order.order_id)
            if not order.is_open:
                accounts.closed_orders.append(order)
                continue
            accounts._add_open(order)
        accounts.last_order_id = max(accounts.last_order_id, state.get("last_order_id", 0))
        for by_asset in state.get("transactions", {}).values():
            for items in by_asset.values():
                accounts.new_transactions.extend(Transaction(*item) for item in items)
        accounts.settlement_sequences = dict(state["settlement_sequences"])
        accounts.net_deposits = dict(state["net_deposits"])
        accounts.amends = {amend[0]: AmendRequested(*amend) for amend in state.get("amends", ())}
        return accounts

    # ---- the one mutation path ----------------------------------------

    def apply(self, event: Any) -> None:
        """Apply one event of this shard's stream."""
        kind = type(event)
        if kind is SettlementApplied:
            self._apply_settlement(event)
        elif kind is OrderAccepted:
            self._apply_accepted(event)
        elif kind is FundsHeld:
            self._move(event.username, event.asset_id, -event.amount, event.amount, None)
            self.orders[event.order_id].reserved += event.amount
        elif kind is FundsDeposited:
            self._move(event.username, event.asset_id, event.amount, 0, event.timestamp)
            self.net_deposits[event.asset_id] = self.net_deposits.get(event.asset_id, 0) + event.amount
        elif kind is FundsWithdrawn:
            self._move(event.username, event.asset_id, -event.amount, 0, event.timestamp)
            self.net_deposits[event.asset_id] -= event.amount
        elif kind is OrderAborted:
            order = self.orders[event.order_id]
            self._finish(order, OrderStatus.FAILED, CloseReason(event.reason), event.timestamp)
        elif kind is AssetListed:
            self.assets[event.asset_id] = AssetSpec.create(event.asset_id, event.tick_size,
                                                          event.lot_size, event.name)
        elif kind is AmendRequested:
            self._apply_amend_requested(event)
        elif kind is AmendAborted:
            self._end_amend(event.order_id, event.amend_id)
        else:
            raise EngineError(f"not an accounts event: {event!r}")

    def _emit(self, events: list) -> list:
        for event in events:
            self.apply(event)
        return events

    def _apply_accepted(self, event: OrderAccepted) -> None:
        order = OrderRecord(
            event.order_id, event.username, event.asset_id, ORDER_TYPES[event.order_type],
            TIMES_IN_FORCE[event.time_in_force], event.post_only, event.quantity, event.price,
            event.client_order_id, event.description, event.timestamp, event.stop_price, event.stop_kind,
        )
        self._add_open(order)
        self.last_order_id = max(self.last_order_id, order.order_id)

    def _add_open(self, order: OrderRecord) -> None:
        self.orders[order.order_id] = order
        by_user = self.orders_by_user.get(order.username)
        if by_user is None:
            by_user = self.orders_by_user[order.username] = {}
        by_user[order.order_id] = None
        if order.client_order_id is not None:
            self.client_order_ids[(order.username, order.client_order_id)] = order.order_id

    def _apply_settlement(self, event: SettlementApplied) -> None:
        expected = self.settlement_sequences.get(event.asset_id, 0) + 1
        if event.settlement_sequence != expected:
            raise EngineError(
                f"settlement {event.asset_id}#{event.settlement_sequence} applied out of order "
                f"(expected #{expected})"
            )
        self.settlement_sequences[event.asset_id] = event.settlement_sequence
        spec = self.assets[event.asset_id]
        orders = self.orders
        for book_event in event.events:
            kind = type(book_event)
            if kind is TradeExecuted:
                for order_id in (book_event.taker_order_id, book_event.maker_order_id):
                    order = orders.get(order_id)
                    if order is not None:
                        self._fill(order, spec, book_event)
            elif kind is OrderRested:
                order = orders.get(book_event.order_id)
                if order is not None and order.is_open:
                    order.status = OrderStatus.PROCESSING if order.filled_quantity else OrderStatus.CONFIRMED
                    order.updated_at = book_event.timestamp
            elif kind is OrderClosed:
                order = orders.get(book_event.order_id)
                if order is not None and order.is_open:
                    reason = CloseReason(book_event.reason) if book_event.reason else None
                    self._finish(order, STATUSES[book_event.status], reason, book_event.timestamp)
            elif kind is StopAccepted:
                order = orders.get(book_event.order_id)
                if order is not None:
                    order.stop_waiting = True
            elif kind is StopTriggered:
                order = orders.get(book_event.order_id)
                if order is not None:
                    order.stop_waiting = False
                    order.triggered_at = order.updated_at = book_event.timestamp
            elif kind is OrderAmended:
                self._apply_amended(spec, book_event)
            elif kind is AmendRefused:
                self._end_amend(book_event.order_id, book_event.amend_id)
            elif kind is OrderHeld:
                if book_event.order_id not in orders:  # the hold was lost with a crash: it comes back
                    self._apply_carried_hold(book_event)
            else:
                raise EngineError(f"not a settlement event: {book_event!r}")

    def _apply_carried_hold(self, event: OrderHeld) -> None:
        """Apply the hold a book carried for an order this shard sent before journaling it."""
        for encoded in event.events:
            carried = decode_event(encoded)
            if type(carried) not in (OrderAccepted, FundsHeld) or carried.order_id != event.order_id:
                raise EngineError(f"a carried hold holds {carried!r}")
            self.apply(carried)

    def _fill(self, order: OrderRecord, spec: AssetSpec, trade: TradeExecuted) -> None:
        quantity, price, timestamp = trade.quantity, trade.price, trade.timestamp
        notional = spec.notional(price, quantity)
        username, asset_id = order.username, order.asset_id
        if order.order_type is OrderType.LIMIT_BUY or order.order_type is OrderType.MARKET_BUY:
            # A limit buy reserved its own price; a fill at a better price releases the difference.
            reserved = spec.notional(order.price, quantity) if order.price is not None else notional
            self._move(username, USD, reserved - notional, -reserved, timestamp)
            self._move(username, asset_id, quantity, 0, timestamp)
            order.reserved -= reserved
            transaction_type, side_code = "BUY", "B"
        else:
            self._move(username, asset_id, 0, -quantity, timestamp)
            self._move(username, USD, notional, 0, timestamp)
            order.reserved -= quantity
            transaction_type, side_code = "SELL", "S"
        if order.reserved < 0:
            raise EngineError(f"order {order.order_id} spent more than it reserved")
        order.filled_quantity += quantity
        order.total_amount += notional
        order.updated_at = timestamp
        if order.filled_quantity == order.quantity:
            self._finish(order, OrderStatus.COMPLETED, None, timestamp)
        else:
            order.status = OrderStatus.PROCESSING
        self.new_transactions.append(Transaction(
            f"{asset_id}-{trade.trade_id}-{side_code}", username, asset_id, transaction_type,
            quantity, price, notional, order.order_id, timestamp,
        ))

    def _finish(self, order: OrderRecord, status: OrderStatus, reason: CloseReason | None,
                timestamp: int) -> None:
        """Close an order and release whatever it still reserves."""
        if order.reserved:
            held_asset = USD if order.side == Side.BUY else order.asset_id
            self._move(order.username, held_asset, order.reserved, -order.reserved, timestamp)
            order.reserved = 0
        order.status = status
        order.reason = reason
        order.updated_at = timestamp
        # Closed: it leaves the hot state, for the owner to keep as history.
        order.stop_waiting = False
        self.amends.pop(order.order_id, None)  # its extra hold went with the rest
        del self.orders[order.order_id]
        by_user = self.orders_by_user[order.username]
        del by_user[order.order_id]
        if not by_user:
            del self.orders_by_user[order.username]
        if order.client_order_id is not None:
            self.client_order_ids.pop((order.username, order.client_order_id), None)
        self.closed_orders.append(order)

    def _move(self, username: str, asset_id: str, available: int, held: int, timestamp: int | None) -> None:
        accounts = self.balances.get(username)
        if accounts is None:
            accounts = self.balances[username] = {}
        entry = accounts.get(asset_id)
        if entry is None:
            entry = accounts[asset_id] = [0, 0, 0]
        entry[_AVAILABLE] += available
        entry[_HELD] += held
        if entry[_AVAILABLE] < 0 or entry[_HELD] < 0:
            raise EngineError(f"balance of {username} in {asset_id} went negative")
        if timestamp is not None:
            entry[_UPDATED] = timestamp

    def _check_amount(self, asset_id: str, amount: int) -> RejectReason | None:
        if asset_id != USD and asset_id not in self.assets:
            return RejectReason.UNKNOWN_ASSET
        if amount <= 0:
            return RejectReason.INVALID_AMOUNT
        return None
