"""The account shard: the only writer of the accounts routed to it.

It checks and holds funds, journals the hold and sends the order to its book:
while the hold is being journaled when that is safe (`_may_send_early`, issue 12),
the order carrying the hold's events for the book to keep in its own record, else
once the hold is durable. It answers once the hold is durable and the book's
verdict has come back through the numbered settlement path: in the book's answer
to its own call, or by the book's delivery loop. Settlements are applied strictly in order per asset (one
that arrives early waits for the gap to fill) and journaled; one that was
already applied is ignored. The books hear what is durable here with every
call, and keep a settlement until then. At start it
replays its journal, then reconciles with every book actor: it fences its own
order ids there, applies the settlements it missed, and fails (recovery
aborted) the orders that never reached a book. A hold the shard lost in a crash after its
book kept the order comes back with the order's settlements (`OrderHeld`); the fence
covers every id the shard may have sent before journaling it (`OrderIdsReserved`).

Memory holds the hot state (`Accounts`: balances, holds, open orders) and what
an answer in flight still needs: orders that closed and fills that were made
until their history is durable (`_closing`, `_unsaved`). History — closed
orders, transactions, client order ids — is kept on disk (actors/history.py),
written in the same transaction as the journal records that made it; reads
merge the two. A data directory from before history left memory moves it to
disk once, on its first start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

import ray

from actors.coalescing import CoalescingQueue
from actors.config import ORDER_ID_SHARD_BITS, ServiceConfig, book_actor_for, make_order_id
from actors.faults import armed, crash_point
from actors.history import TABLES, HistoryReader, order_accepted_writes
from actors.journaled import JournaledState
from actors.messages import (
    AdjustBalance, Balance, BalanceOutcome, BookCancel, BookOrder, CancelAnswer, CancelOrder, OrderOutcome,
    PlaceOrder, SettlementBatch, SubmitAnswer, Transaction, from_rows, to_rows,
)
from actors.records import SHARD_RECORDS, OrderIdsReserved
from actors.retry import call_now_with_retry, call_with_retry
from actors.shard_changes import ShardChanges, decided as _decided, now_micros
from actors.shard_history import ShardHistory
from actors.shard_access import ShardAccess
from actors.shard_suspension import ShardSuspension
from actors.streams import OrderStreams
from engine import (
    Accounts, AssetSpec, CloseReason, OrderAccepted, OrderHeld, OrderRecord, OrderRested, OrderType,
    RejectReason, StopAccepted, StopTriggered, TradeExecuted, decode_event, encode_event,
)
from engine.events import event_owners
from engine.orders import ORDER_TYPES, TIMES_IN_FORCE
from engine.queries import audit

log = logging.getLogger(__name__)


_new = tuple.__new__

# Order ids reserved at a time for orders sent before their holds are journaled (local sequences):
# a recovery skips what is left of them.
IDS_RESERVED_AT_ONCE = 4096
# Book events that credit no account's available balance (see `_may_send_early`).
_NOT_CREDITS = (OrderRested, StopAccepted, StopTriggered, OrderHeld)


def _closed(order: OrderRecord) -> bool:
    return not order.is_open


class AccountShardActor(ShardChanges, ShardSuspension, ShardHistory):
    """Balances, holds, orders and transactions of the accounts of one shard."""

    def __init__(self, config: ServiceConfig, index: int, replay_until: int | None = None,
                 offline: bool = False) -> None:
        """Recover from the journal. `offline` (verify, replay): write nothing, not even the move
        of an older data directory's history to disk."""
        self.config = config
        self.index = index
        self.accounts = Accounts()
        # Order id -> the calls waiting for it to be decided or closed; `_notify` drops each once it holds.
        self._waiters: dict[int, list[tuple[Callable[[OrderRecord], bool], asyncio.Future]]] = {}
        self._senders: dict[int, CoalescingQueue] = {}  # one per book actor
        self._books: dict[int, ray.actor.ActorHandle] = {}
        self._ready: asyncio.Task | None = None
        # Settlements that came before their turn, taken out as soon as their turn comes (`_apply_now`).
        self._early: dict[str, dict[int, list]] = {}
        self._background: set[asyncio.Task] = set()  # each leaves when done
        # Amend id -> its book's verdict (a reason or None); the amend's own call removes it when it ends.
        self._amend_waiters: dict[int, asyncio.Future] = {}
        # Closed orders and fills whose history is not durable yet: reads still need them; each goes
        # once its history write is durable (`_forget_kept`).
        self._closing: dict[int, OrderRecord] = {}
        self._unsaved: dict[str, Transaction] = {}
        self.streams = OrderStreams()  # watched users' order changes and fills (live streams)
        self.access = ShardAccess(config.order_rate, config.read_rate)  # suspensions, rate limits
        # Issue 12, what decides whether an order may leave before its hold is durable (`_may_send_early`):
        # users with a credit in memory that is not durable yet, and no book would send again (a
        # deposit, a settlement this shard has not journaled); held orders and amends journaled
        # first and not yet sent to their books; the order ids reserved for early sending.
        self._crediting: dict[str, int] = {}
        self._unsent = 0
        self.ids_reserved = 0
        self.orders_sent = {"early": 0, "after_hold": 0}  # for /metrics
        self.store = JournaledState(config.journal_path(f"shard-{index}"), sync=config.sync,
                                    snapshot=self._snapshot_state,
                                    snapshot_every=config.snapshot_every, snapshot_seconds=config.snapshot_seconds,
                                    retention=config.journal_retention, map_size=config.journal_map_size,
                                    tables=TABLES, create_tables=not offline)
        self.history = HistoryReader(self.store.journal.reading)
        self._kept_on_disk = self.history.has_format()
        started = time.perf_counter()
        count = self.store.replay(self._load_state, self._replay, until=replay_until)
        if not self._kept_on_disk and not offline and replay_until is None:
            self._move_history_to_disk()
        self.accounts.take_history()  # what the replay closed is on disk already
        # What the journal holds: the books may forget settlements up to here.
        self._durable_applied: dict[str, int] = dict(self.accounts.settlement_sequences)
        self.next_sequence = (max(self.accounts.last_order_id, self.ids_reserved) >> ORDER_ID_SHARD_BITS) + 1
        log.info("shard %d replayed %d records in %.3fs", index, count, time.perf_counter() - started)

    # ---- commands ------------------------------------------------------

    async def ready(self) -> bool:
        """Finish recovery (reconcile with the books); answer once the shard serves."""
        await self._ensure_ready()
        return True

    async def list_asset(self, spec: AssetSpec) -> bool:
        await self._ensure_ready()
        events = self.accounts.list_asset(spec)
        if isinstance(events, RejectReason):
            return False
        await self._journal(events)
        return True

    async def adjust_balances(self, requests: list[AdjustBalance]) -> list[BalanceOutcome]:
        """Apply deposits and withdrawals; answer the balances after them."""
        await self._ensure_ready()
        timestamp = now_micros()
        results, events, credited = [], [], []
        for request in requests:
            command = self.accounts.deposit if request.kind == "deposit" else self.accounts.withdraw
            outcome = command(request.username, request.asset_id, request.amount, timestamp)
            if isinstance(outcome, RejectReason):
                results.append(BalanceOutcome(outcome.value, None))
                continue
            events.extend(outcome)
            if request.kind == "deposit":
                credited.append(request.username)
            results.append(BalanceOutcome(None, self.accounts.balance(request.username, request.asset_id)))
        if events:
            self._credit_pending(credited, 1)
            try:
                await self._journal(events)
            finally:
                self._credit_pending(credited, -1)
        return results

    async def place_orders(self, rows: list[list]) -> list[list]:
        """Hold funds for and place each `PlaceOrder` (rows); answer `OrderOutcome` rows after matching."""
        await self._ensure_ready()
        requests = from_rows(PlaceOrder, rows)
        timestamp = now_micros()
        results: list = [None] * len(requests)
        events: list = []
        accepted: list[tuple[int, int]] = []
        held: list[list] = []  # each accepted order's hold events
        outgoing: dict[int, list[BookOrder]] = {}
        orders = self.accounts.orders
        check = self.access.order_check  # None unless someone here is suspended or orders are limited
        instant = time.monotonic()  # the limit decides the whole call at one instant
        remaining = None
        for position, request in enumerate(requests):
            if check is not None:
                refused, remaining = check(request.username, instant)
                if refused is not None:
                    results[position] = OrderOutcome.rejected(refused, None, remaining)
                    continue
            kind, tif = ORDER_TYPES.get(request.order_type), TIMES_IN_FORCE.get(request.time_in_force)
            if kind is None or tif is None:
                results[position] = OrderOutcome.rejected(RejectReason.INVALID_ORDER.value, None, remaining)
                continue
            earlier = self._earlier_order(request.username, request.client_order_id)
            if earlier is not None:
                results[position] = OrderOutcome.duplicate(earlier, remaining)
                continue
            order_id = make_order_id(self.next_sequence, self.index)
            outcome = self.accounts.place_order(
                order_id, request.username, request.asset_id, kind, tif, bool(request.post_only),
                request.quantity, request.price, request.client_order_id, request.description, timestamp,
                request.stop_price, request.stop_kind)
            if isinstance(outcome, RejectReason):
                results[position] = OrderOutcome.rejected(outcome.value, None, remaining)
                continue
            self.next_sequence += 1
            events.extend(outcome)
            accepted.append((position, order_id, remaining))
            held.append(outcome)
            # A market buy's budget is all it holds: the user's available USD.
            budget = orders[order_id].reserved if kind is OrderType.MARKET_BUY else None
            book = book_actor_for(request.asset_id, self.config.book_actor_count)
            outgoing.setdefault(book, []).append(_new(BookOrder, (  # BookOrder(...) at half the cost
                order_id, request.username, request.asset_id, kind.side.value, request.quantity, request.price,
                tif.value, bool(request.post_only), budget, timestamp, request.stop_price, request.stop_kind,
                None)))
        if not accepted:
            return OrderOutcome.to_rows(results)
        decided = [self._wait(order_id, _decided) for _, order_id, _ in accepted]
        early = False
        if self.config.early_send and accepted[-1][1] > self.ids_reserved:
            events.append(self._reserve_ids())  # this call waits for its commit; later ones need not
        elif self._may_send_early(requests, accepted, outgoing):
            # The two commits in parallel: the order leaves with its hold's events, which the book
            # journals with the order, while this shard journals them too; the answer waits for both.
            carried = {order_id: [encode_event(event) for event in hold]
                       for (_, order_id, _), hold in zip(accepted, held)}
            for book, book_orders in outgoing.items():
                self._sender(book).send([order._replace(held=carried[order.order_id]) for order in book_orders])
            if armed(self.config, "shard.early_hold_unwritten"):
                # Die once the books have journaled these orders, with nothing more journaled here:
                # the loop stays blocked until then, so not even their answers' settlements are.
                ray.get([self._book(book).flush.remote() for book in outgoing])
                crash_point(self.config, "shard.early_hold_unwritten")
            await self._journal(events)
            early = True
            self.orders_sent["early"] += len(accepted)
        if not early:
            self.orders_sent["after_hold"] += len(accepted)
            # The hold is durable before the book sees the order. Until it is sent, no order
            # may overtake it to the book (which would fence its lower id).
            self._unsent += 1
            try:
                await self._journal(events)
                crash_point(self.config, "shard.after_hold")
                for book, book_orders in outgoing.items():
                    self._sender(book).send(book_orders)
            finally:
                self._unsent -= 1
        await asyncio.gather(*decided)
        for position, order_id, left in accepted:
            results[position] = OrderOutcome.placed(self._view(order_id), left)
        return OrderOutcome.to_rows(results)

    def _may_send_early(self, requests: list[PlaceOrder], accepted: list[tuple[int, int, int | None]],
                        outgoing: dict[int, list[BookOrder]]) -> bool:
        """Whether this call's orders may leave for their books before their holds are durable.

        Only if a crash before the hold's commit leaves what recovery can rebuild: the book that
        keeps an order keeps its hold too, and recovery applies such holds before, or among,
        the credits books send again, so each must be paid from what this shard's journal
        holds. So not while a user of the call has a credit in memory that is not journaled
        here yet (`_crediting`): a deposit (no book would send it again) or a settlement's
        (its book sends it again, but a recovery may apply it after the hold it paid for, and
        no balance may go below zero); nor while an earlier held order or amend waits for its
        commit to be sent (it would be overtaken, and the book would fence its lower id); nor
        for ids past the reservation (`place_orders` reserves them, journaled first).

        And only while the call's books are idle here (no call to them in flight): carrying a
        hold costs CPU on the way there and back (on 2 cores, 0.87x the orders/s under load), and
        an order that would wait behind another call gains little; a lone order gains a commit."""
        if not self.config.early_send or self._unsent or accepted[-1][1] > self.ids_reserved:
            return False
        if not all(self._sender(book).idle for book in outgoing):
            return False
        crediting = self._crediting
        return not crediting or not any(requests[position].username in crediting for position, _, _ in accepted)

    def _reserve_ids(self) -> OrderIdsReserved:
        self.ids_reserved = make_order_id(self.next_sequence + IDS_RESERVED_AT_ONCE, self.index)
        return OrderIdsReserved(self.ids_reserved)

    def _credit_pending(self, usernames, step: int) -> None:
        """Count credits of these users in memory that are not durable yet (`step` 1), or that are now (-1)."""
        crediting = self._crediting
        for username in usernames:
            count = crediting.get(username, 0) + step
            if count:
                crediting[username] = count
            else:
                del crediting[username]

    async def cancel_orders(self, rows: list[list]) -> list[list]:
        """Cancel each `CancelOrder` (rows): the book first, then the release comes back here;
        answer `OrderOutcome` rows."""
        await self._ensure_ready()
        requests = from_rows(CancelOrder, rows)
        timestamp = now_micros()
        results: list = [None] * len(requests)
        targets: list[tuple[int, OrderRecord]] = []
        check = self.access.order_check
        instant = time.monotonic()
        left: dict[int, int | None] = {}
        for position, request in enumerate(requests):
            if check is not None:
                refused, left[position] = check(request.username, instant)
                if refused is not None:
                    results[position] = OrderOutcome.rejected(refused, None, left[position])
                    continue
            order = self.accounts.user_order(request.username, request.order_id)
            if order is not None:
                targets.append((position, order))
                continue
            closed = self._user_view(request.username, request.order_id)
            if closed is None:
                results[position] = OrderOutcome.rejected(RejectReason.ORDER_NOT_FOUND.value, None, left.get(position))
            else:
                results[position] = OrderOutcome.rejected(RejectReason.ORDER_NOT_OPEN.value, closed, left.get(position))
        await self._cancel_open([order for _, order in targets], timestamp, CloseReason.USER_CANCELLED)
        for position, order in targets:
            if order.reason is CloseReason.USER_CANCELLED:
                results[position] = OrderOutcome.placed(order.view(), left.get(position))
            else:
                results[position] = OrderOutcome.rejected(RejectReason.ORDER_NOT_OPEN.value, order.view(),
                                                          left.get(position))
        return OrderOutcome.to_rows(results)

    async def _cancel_open(self, orders: list[OrderRecord], timestamp: int, reason: CloseReason) -> None:
        """Take open orders off their books (one call per book actor, each journaled there as one
        record) and wait until each has closed here, by this cancel or by a fill before it."""
        # An order still waiting for its book's verdict is cancelled once it has one.
        await asyncio.gather(*(self._wait(order.order_id, _decided) for order in orders))
        by_book: dict[int, list[BookCancel]] = {}
        for order in orders:
            book = book_actor_for(order.asset_id, self.config.book_actor_count)
            by_book.setdefault(book, []).append(BookCancel(order.order_id, order.asset_id, timestamp, reason.value))
        answers = await asyncio.gather(*(
            call_with_retry(lambda book=book, cancels=cancels: self._book(book).cancel.remote(
                                self.index, to_rows(cancels), dict(self._durable_applied)),
                            lambda book=book: self._books.pop(book, None))
            for book, cancels in by_book.items()))
        for answer in answers:
            self._apply_handed_out(CancelAnswer.from_row(answer))
        # Whether our cancel or a fill closed it, the book's word arrives as a settlement.
        await asyncio.gather(*(self._wait(order.order_id, _closed) for order in orders))

    async def apply_settlements(self, book_index: int, rows: list[list]) -> dict[str, int]:
        """Apply numbered settlements (`SettlementBatch` rows) in order; answer the applied sequence
        per asset once durable."""
        await self._ensure_ready()
        return await self._apply_settlements(from_rows(SettlementBatch, rows))

    # ---- queries -------------------------------------------------------

    async def balances(self, username: str) -> dict[str, Balance]:
        await self._ensure_ready()
        return self.accounts.user_balances(username)

    async def flush(self) -> int:
        """Wait until every change made so far is durable."""
        return await self.store.flush()

    # ---- streams (stream hook: see actors/streams.py) ------------------

    async def poll_orders(self, username: str, since: int | None, incarnation: str | None,
                          timeout: float) -> list:
        """Long-poll a user's order changes and fills past `since` (see `OrderStreams.poll`)."""
        await self._ensure_ready()
        return await self.streams.poll(username, since, incarnation, timeout)

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
        """Journal events with the history they made, and wait until both are durable."""
        writes = []
        for event in events:
            if type(event) is OrderAccepted and event.client_order_id is not None:
                writes += order_accepted_writes(event.username, event.client_order_id, event.order_id)
        closed, transactions = self._take_history(writes)
        await self.store.append([SHARD_RECORDS.encode(event) for event in events], writes)
        self._forget_kept(closed, transactions)

    def _replay(self, raw: list) -> None:
        record = SHARD_RECORDS.decode(raw)
        if type(record) is OrderIdsReserved:
            self.ids_reserved = max(self.ids_reserved, record.order_id)
        elif not self._replay_access(record):
            self.accounts.apply(record)
        if len(self.accounts.closed_orders) + len(self.accounts.new_transactions) > 100_000 and self._kept_on_disk:
            self.accounts.take_history()  # on disk already: the records wrote it

    async def _apply_settlements(self, batches: list[SettlementBatch]) -> dict[str, int]:
        """Apply settlements; answer what is durable once these are."""
        durable = self._apply_now(batches)
        if durable is not None:
            await durable
        return dict(self._durable_applied)

    def _apply_now(self, batches: list[SettlementBatch]) -> asyncio.Task | None:
        """Apply settlements in order per asset and journal them; return the task that
        records them as durable, or None if nothing new was applied."""
        records: list = []
        touched: set[int] = set()
        credited: set[str] = set()
        writes: list = []
        sequences = self.accounts.settlement_sequences
        for batch in batches:
            asset_id = batch.asset_id
            if batch.sequence > sequences.get(asset_id, 0) + 1:
                self._early.setdefault(asset_id, {})[batch.sequence] = batch.events
                continue
            self._settle(asset_id, batch.sequence, batch.events, records, touched, credited, writes)
            early = self._early.get(asset_id)
            while early:
                following = early.pop(sequences[asset_id] + 1, None)
                if following is None:
                    break
                self._settle(asset_id, sequences[asset_id] + 1, following, records, touched, credited, writes)
        closed, transactions = self._take_history(writes)
        self._notify(touched)
        if not records:
            return None
        self._credit_pending(credited, 1)  # until journaled here: a crash would have only the books' copy
        task = asyncio.get_running_loop().create_task(
            self._mark_durable(self.store.submit(records, writes), dict(sequences), closed, transactions, credited))
        self._background.add(task)  # keep a reference until it is done
        task.add_done_callback(self._background.discard)
        return task

    def _settle(self, asset_id: str, sequence: int, encoded: list, records: list, touched: set[int],
                credited: set[str], writes: list) -> None:
        book_events = tuple(decode_event(event) for event in encoded)
        watched = self.streams.watched_orders(self.accounts, book_events)  # stream hook
        orders = self.accounts.orders
        lost = [event for event in book_events if type(event) is OrderHeld and event.order_id not in orders]
        if isinstance(self.accounts.settle(asset_id, sequence, book_events), RejectReason):
            return  # applied before: a resend
        records.append(SHARD_RECORDS.settlement_applied(asset_id, sequence, encoded))
        for event in lost:  # holds rebuilt from a book's copy: their client order ids are kept from here
            accepted = decode_event(event.events[0])
            writes += order_accepted_writes(accepted.username, accepted.client_order_id, accepted.order_id)
        self.streams.settled(self.accounts, asset_id, book_events, watched)  # stream hook: orders and fills
        for event in book_events:
            if type(event) not in _NOT_CREDITS:
                credited.update(event_owners(event))
            if type(event) is TradeExecuted:
                touched.add(event.taker_order_id)
                touched.add(event.maker_order_id)
            else:
                touched.add(event.order_id)
                if self._amend_waiters and hasattr(event, "amend_id"):
                    self._amend_verdict(event)

    async def _mark_durable(self, durable, applied: dict[str, int], closed: list[OrderRecord],
                            transactions: list[Transaction], credited: set[str]) -> None:
        await durable
        crash_point(self.config, "shard.after_settle")  # settled and kept on disk; the book not yet told
        self._forget_kept(closed, transactions)
        self._credit_pending(credited, -1)
        for asset_id, sequence in applied.items():
            if sequence > self._durable_applied.get(asset_id, 0):
                self._durable_applied[asset_id] = sequence

    def _apply_handed_out(self, answer: SubmitAnswer | CancelAnswer) -> None:
        """Apply the settlements a book handed back with its answer to our `submit` or `cancel`."""
        if answer.settlements:
            self._apply_now(answer.settlements)

    def _wait(self, order_id: int, condition: Callable[[OrderRecord], bool]) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        order = self.accounts.orders.get(order_id) or self._closing.get(order_id)
        if order is None or condition(order):  # gone from memory: closed and kept on disk
            future.set_result(None)
        else:
            self._waiters.setdefault(order_id, []).append((condition, future))
        return future

    def _notify(self, order_ids: set[int]) -> None:
        for order_id in order_ids:
            waiting = self._waiters.get(order_id)
            if not waiting:
                continue
            order = self.accounts.orders.get(order_id) or self._closing.get(order_id)
            still = []
            for condition, future in waiting:
                if order is None or condition(order):
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
        # Every id this shard may have sent: those journaled, and those reserved for early sending.
        fence = max(self.accounts.last_order_id, self.ids_reserved)
        for book in range(self.config.book_actor_count):
            applied = dict(self.accounts.settlement_sequences)
            missed = await call_with_retry(
                lambda book=book, applied=applied: self._book(book).reconcile.remote(self.index, fence, applied),
                lambda book=book: self._books.pop(book, None))
            await self._apply_settlements(from_rows(SettlementBatch, missed))
        timestamp = now_micros()
        aborted = []
        for order in self.accounts.pending_orders():
            aborted.extend(self.accounts.abort_order(order.order_id, timestamp))
        if aborted:
            log.warning("shard %d failed %d orders that never reached a book", self.index, len(aborted))
        # The fence now covers every amend this shard journaled: one without a verdict never will have one.
        amends = self.accounts.abort_amends(timestamp)
        if amends:
            log.warning("shard %d gave back the holds of %d amends that never reached a book", self.index, len(amends))
        if aborted or amends:
            await self._journal(aborted + amends)
        self._finish_suspensions(timestamp)

    def _load_state(self, state: dict) -> None:
        for username in state.pop("suspended", ()):
            self.access.set_suspended(username, True)
        self.ids_reserved = state.pop("ids_reserved", 0)
        self.accounts = Accounts.from_state(state)

    def _snapshot_state(self) -> dict:
        state = self.accounts.to_state()
        if self.access.suspended:  # only then: a state without suspensions reads as before
            state["suspended"] = sorted(self.access.suspended)
        if self.ids_reserved:
            state["ids_reserved"] = self.ids_reserved
        return state

    def _book(self, book: int) -> ray.actor.ActorHandle:
        handle = self._books.get(book)
        if handle is None:
            handle = self._books[book] = ray.get_actor(
                self.config.actor_name(f"book-{book}"), namespace=self.config.namespace)
        return handle

    def _sender(self, book: int) -> CoalescingQueue:
        """The queue of held orders to one book: in order, one call in flight, retried across restarts.

        A call the book refuses (a bug, not a restart) leaves its orders pending; this shard's
        next recovery fails them, and the queue goes on with later orders."""
        sender = self._senders.get(book)
        if sender is None:
            sender = self._senders[book] = CoalescingQueue(
                lambda orders, book=book: call_now_with_retry(
                    lambda: self._book(book).submit.remote(self.index, to_rows(orders), dict(self._durable_applied)),
                    lambda: self._books.pop(book, None)),
                max_batch=2000, on_result=lambda row: self._apply_handed_out(SubmitAnswer.from_row(row)), eager=True)
        return sender

    async def metrics(self) -> dict:
        """Figures for /metrics, gathered once per scrape: journal, memory, orders awaiting a book."""
        figures = self.store.metrics(f"shard-{self.index}")
        figures["queues"] = {"orders_awaiting_book": len(self._waiters)}
        figures["orders_sent"] = dict(self.orders_sent)
        return figures
