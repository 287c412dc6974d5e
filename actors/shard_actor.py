"""The account shard: the only writer of the accounts routed to it.

It checks and holds funds, journals the hold, and only then sends the order
to its book; it answers once the book's verdict has come back through the
numbered settlement path: in the book's answer to its own call, or by the
book's delivery loop. Settlements are applied strictly in order per asset (one
that arrives early waits for the gap to fill) and journaled; one that was
already applied is ignored. The books hear what is durable here with every
call, and keep a settlement until then. At start it
replays its journal, then reconciles with every book actor: it fences its own
order ids there, applies the settlements it missed, and fails (recovery
aborted) the orders that never reached a book.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

import ray

from actors.config import ORDER_ID_SHARD_BITS, ServiceConfig, book_actor_for, make_order_id
from actors.faults import crash_point
from actors.journaled import JournaledState
from actors.senders import OrderedSender, call_with_retry
from engine import (
    Accounts, AssetSpec, OrderRecord, OrderType, RejectReason, TimeInForce, TradeExecuted,
    decode_event, encode_event,
)
from engine.queries import audit, page, user_orders, user_transactions

log = logging.getLogger(__name__)


def now_micros() -> int:
    return time.time_ns() // 1000


def _decided(order: OrderRecord) -> bool:
    return order.status.value != "pending"


def _closed(order: OrderRecord) -> bool:
    return not order.is_open


class AccountShardActor:
    """Balances, holds, orders and transactions of the accounts of one shard."""

    def __init__(self, config: ServiceConfig, index: int, replay_until: int | None = None) -> None:
        self.config = config
        self.index = index
        self.accounts = Accounts()
        self._waiters: dict[int, list[tuple[Callable[[OrderRecord], bool], asyncio.Future]]] = {}
        self._senders: dict[int, OrderedSender] = {}
        self._books: dict[int, ray.actor.ActorHandle] = {}
        self._ready: asyncio.Task | None = None
        self._early: dict[str, dict[int, list]] = {}
        self._background: set[asyncio.Task] = set()  # settlements that came before their turn
        self.store = JournaledState(config.journal_path(f"shard-{index}"), sync=config.sync,
                                    snapshot_every=config.snapshot_every, map_size=config.journal_map_size)
        started = time.perf_counter()
        count = self.store.replay(self._load_state, lambda record: self.accounts.apply(decode_event(record)),
                                  until=replay_until)
        # What the journal holds: the books may forget settlements up to here.
        self._durable_applied: dict[str, int] = dict(self.accounts.settlement_sequences)
        self.next_sequence = max((order_id >> ORDER_ID_SHARD_BITS for order_id in self.accounts.orders), default=0) + 1
        log.info("shard %d replayed %d records in %.3fs", index, count, time.perf_counter() - started)

    # ---- commands ------------------------------------------------------

    async def ready(self) -> bool:
        """Finish recovery (reconcile with the books); answer once the shard serves."""
        await self._ensure_ready()
        return True

    async def list_asset(self, record: list) -> bool:
        await self._ensure_ready()
        events = self.accounts.list_asset(AssetSpec.from_record(record))
        if isinstance(events, RejectReason):
            return False
        await self._journal(events)
        return True

    async def adjust_balances(self, requests: list[tuple[str, str, str, int]]) -> list:
        """Apply (kind, username, asset_id, amount) deposits and withdrawals; answer balances."""
        await self._ensure_ready()
        timestamp = now_micros()
        results, events = [], []
        for kind, username, asset_id, amount in requests:
            command = self.accounts.deposit if kind == "deposit" else self.accounts.withdraw
            outcome = command(username, asset_id, amount, timestamp)
            if isinstance(outcome, RejectReason):
                results.append(("rejected", outcome.value))
                continue
            events.extend(outcome)
            results.append(("ok", self.accounts.balance(username, asset_id)))
        if events:
            await self._journal(events)
        return results

    async def place_orders(self, requests: list[tuple]) -> list[tuple]:
        """Hold funds for and place each (username, asset_id, order_type, time_in_force, post_only,
        quantity, price, client_order_id, description); answer after matching."""
        await self._ensure_ready()
        timestamp = now_micros()
        results: list = [None] * len(requests)
        events: list = []
        accepted: list[tuple[int, int]] = []
        outgoing: dict[int, list[tuple]] = {}
        for position, request in enumerate(requests):
            (username, asset_id, order_type, time_in_force, post_only, quantity, price,
             client_order_id, description) = request
            try:
                kind, tif = OrderType(order_type), TimeInForce(time_in_force)
            except ValueError:
                results[position] = ("rejected", RejectReason.INVALID_ORDER.value)
                continue
            order_id = make_order_id(self.next_sequence, self.index)
            outcome = self.accounts.place_order(order_id, username, asset_id, kind, tif, bool(post_only),
                                                quantity, price, client_order_id, description, timestamp)
            if isinstance(outcome, RejectReason):
                if outcome is RejectReason.DUPLICATE_CLIENT_ORDER_ID:
                    earlier = self.accounts.order_by_client_id(username, client_order_id)
                    results[position] = ("duplicate", earlier.to_record())
                else:
                    results[position] = ("rejected", outcome.value)
                continue
            self.next_sequence += 1
            events.extend(outcome)
            accepted.append((position, order_id))
            budget = outcome[1].amount if kind is OrderType.MARKET_BUY else None
            book = book_actor_for(asset_id, self.config.book_actor_count)
            outgoing.setdefault(book, []).append(
                (order_id, username, asset_id, kind.side.value, quantity, price, tif.value,
                 bool(post_only), budget, timestamp))
        if not accepted:
            return results
        decided = [self._wait(order_id, _decided) for _, order_id in accepted]
        # The hold is durable before the book sees the order, so a crash can never
        # leave a trade whose buyer or seller holds nothing.
        await self._journal(events)
        crash_point(self.config, "shard.after_hold")
        for book, orders in outgoing.items():
            self._sender(book).send(orders)
        await asyncio.gather(*decided)
        for position, order_id in accepted:
            results[position] = ("ok", self.accounts.orders[order_id].to_record())
        return results

    async def cancel_orders(self, requests: list[tuple[str, int]]) -> list[tuple]:
        """Cancel each (username, order_id): the book first, then the release comes back here."""
        await self._ensure_ready()
        timestamp = now_micros()
        results: list = [None] * len(requests)
        targets: list[tuple[int, OrderRecord]] = []
        for position, (username, order_id) in enumerate(requests):
            order = self.accounts.user_order(username, order_id)
            if order is None:
                results[position] = ("rejected", RejectReason.ORDER_NOT_FOUND.value, None)
            elif not order.is_open:
                results[position] = ("rejected", RejectReason.ORDER_NOT_OPEN.value, order.to_record())
            else:
                targets.append((position, order))
        # An order still waiting for its book's verdict is cancelled once it has one.
        await asyncio.gather(*(self._wait(order.order_id, _decided) for _, order in targets))
        by_book: dict[int, list] = {}
        for position, order in targets:
            book = book_actor_for(order.asset_id, self.config.book_actor_count)
            by_book.setdefault(book, []).append((order.order_id, order.asset_id, timestamp))
        answers = await asyncio.gather(*(
            call_with_retry(lambda book=book, cancels=cancels: self._book(book).cancel.remote(
                                self.index, cancels, dict(self._durable_applied)),
                            lambda book=book: self._books.pop(book, None))
            for book, cancels in by_book.items()))
        for answer in answers:
            self._apply_handed_out(answer)
        # Whether our cancel or a fill closed it, the book's word arrives as a settlement.
        await asyncio.gather(*(self._wait(order.order_id, _closed) for _, order in targets))
        for position, order in targets:
            if order.reason is not None and order.reason.value == "user_cancelled":
                results[position] = ("ok", None, order.to_record())
            else:
                results[position] = ("rejected", RejectReason.ORDER_NOT_OPEN.value, order.to_record())
        return results

    async def apply_settlements(self, book_index: int, batches: list[tuple]) -> dict[str, int]:
        """Apply numbered settlements in order; answer the applied sequence per asset once durable."""
        await self._ensure_ready()
        return await self._apply_settlements(batches)

    # ---- queries -------------------------------------------------------

    async def get_order(self, username: str, order_id: int) -> list | None:
        await self._ensure_ready()
        order = self.accounts.user_order(username, order_id)
        return None if order is None else order.to_record()

    async def list_orders(self, username: str, filters: dict, limit: int, offset: int) -> tuple:
        await self._ensure_ready()
        selected, total, has_more = page(user_orders(self.accounts, username, **filters), limit, offset)
        return [order.to_record() for order in selected], total, has_more

    async def balances(self, username: str) -> dict[str, tuple[int, int, int]]:
        await self._ensure_ready()
        return {asset_id: tuple(entry) for asset_id, entry in self.accounts.balances.get(username, {}).items()}

    async def transactions(self, username: str, asset_id: str, filters: dict, limit: int, offset: int) -> tuple:
        await self._ensure_ready()
        items = user_transactions(self.accounts, username, asset_id, **filters)
        selected, total, has_more = page(items, limit, offset)
        return [tuple(item) for item in selected], total, has_more

    async def flush(self) -> int:
        """Wait until every change made so far is durable."""
        return await self.store.flush()

    async def pid(self) -> int:
        return os.getpid()

    async def audit(self) -> dict:
        """Check this shard's invariants (see engine.queries.audit)."""
        await self._ensure_ready()
        report = audit(self.accounts)
        report["settlement_sequences"] = dict(self.accounts.settlement_sequences)
        return report

    # ---- internals -----------------------------------------------------

    async def _journal(self, events: list) -> None:
        await self.store.append([encode_event(event) for event in events], snapshot=self.accounts.to_state)

    async def _apply_settlements(self, batches: list[tuple]) -> dict[str, int]:
        """Apply settlements; answer what is durable once these are."""
        durable = self._apply_now(batches)
        if durable is not None:
            await durable
        return dict(self._durable_applied)

    def _apply_now(self, batches: list[tuple]) -> asyncio.Task | None:
        """Apply settlements in order per asset and journal them; return the task that
        records them as durable, or None if nothing new was applied."""
        records = []
        touched: set[int] = set()
        sequences = self.accounts.settlement_sequences
        for asset_id, sequence, encoded in batches:
            if sequence > sequences.get(asset_id, 0) + 1:
                self._early.setdefault(asset_id, {})[sequence] = encoded
                continue
            self._settle(asset_id, sequence, encoded, records, touched)
            early = self._early.get(asset_id)
            while early:
                following = early.pop(sequences[asset_id] + 1, None)
                if following is None:
                    break
                self._settle(asset_id, sequences[asset_id] + 1, following, records, touched)
        self._notify(touched)
        if not records:
            return None
        task = asyncio.get_running_loop().create_task(
            self._mark_durable(self.store.submit(records), dict(sequences)))
        self._background.add(task)  # keep a reference until it is done
        task.add_done_callback(self._background.discard)
        return task

    def _settle(self, asset_id: str, sequence: int, encoded: list, records: list, touched: set[int]) -> None:
        book_events = tuple(decode_event(event) for event in encoded)
        if isinstance(self.accounts.settle(asset_id, sequence, book_events), RejectReason):
            return  # applied before: a resend
        records.append(["SettlementApplied", asset_id, sequence, encoded])
        for event in book_events:
            if type(event) is TradeExecuted:
                touched.add(event.taker_order_id)
                touched.add(event.maker_order_id)
            else:
                touched.add(event.order_id)

    async def _mark_durable(self, durable, applied: dict[str, int]) -> None:
        await durable
        for asset_id, sequence in applied.items():
            if sequence > self._durable_applied.get(asset_id, 0):
                self._durable_applied[asset_id] = sequence

    def _apply_handed_out(self, answer: tuple) -> None:
        """Apply the settlements a book handed back with its answer to our `submit` or `cancel`."""
        _outcomes, settlements = answer
        if settlements:
            self._apply_now(settlements)

    def _wait(self, order_id: int, condition: Callable[[OrderRecord], bool]) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        if condition(self.accounts.orders[order_id]):
            future.set_result(None)
        else:
            self._waiters.setdefault(order_id, []).append((condition, future))
        return future

    def _notify(self, order_ids: set[int]) -> None:
        for order_id in order_ids:
            waiting = self._waiters.get(order_id)
            if not waiting:
                continue
            order = self.accounts.orders[order_id]
            still = []
            for condition, future in waiting:
                if condition(order):
                    if not future.done():
                        future.set_result(None)
                else:
                    still.append((condition, future))
            if still:
                self._waiters[order_id] = still
            else:
                del self._waiters[order_id]

    async def _ensure_ready(self) -> None:
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_task(self._reconcile())
        await asyncio.shield(self._ready)

    async def _reconcile(self) -> None:
        """Catch up with every book, then fail the orders no book ever saw."""
        fence = max(self.accounts.orders, default=0)
        for book in range(self.config.book_actor_count):
            applied = dict(self.accounts.settlement_sequences)
            missed = await call_with_retry(
                lambda book=book, applied=applied: self._book(book).reconcile.remote(self.index, fence, applied),
                lambda book=book: self._books.pop(book, None))
            await self._apply_settlements(missed)
        timestamp = now_micros()
        aborted = []
        for order in self.accounts.pending_orders():
            aborted.extend(self.accounts.abort_order(order.order_id, timestamp))
        if aborted:
            log.warning("shard %d failed %d orders that never reached a book", self.index, len(aborted))
            await self._journal(aborted)

    def _load_state(self, state: dict) -> None:
        self.accounts = Accounts.from_state(state)

    def _book(self, book: int) -> ray.actor.ActorHandle:
        handle = self._books.get(book)
        if handle is None:
            handle = self._books[book] = ray.get_actor(
                self.config.actor_name(f"book-{book}"), namespace=self.config.namespace)
        return handle

    def _sender(self, book: int) -> OrderedSender:
        sender = self._senders.get(book)
        if sender is None:
            sender = self._senders[book] = OrderedSender(
                lambda orders, book=book: self._book(book).submit.remote(
                    self.index, orders, dict(self._durable_applied)),
                lambda book=book: self._books.pop(book, None),
                on_result=self._apply_handed_out)
        return sender
