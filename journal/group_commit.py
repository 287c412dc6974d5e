"""Group commit: many small appends share one transaction and one fsync.

`GroupCommitWriter` owns the writes of one journal: while it runs, nothing
else may append to that journal. Callers `submit` events from any thread (or
`await append(...)` from asyncio); each submission gets its sequence numbers
at once, in submission order, and joins the open group. A single writer
thread takes the oldest group and writes it with one `append_encoded` call,
then resolves each submission's future with the last sequence of its events.

Invariants:
- Sequence numbers are gapless and follow submission order, and events become
  durable in that order: a future resolves only after its events, and every
  event submitted before them, are on disk.
- Events are encoded at submission, in the caller's thread: an event that
  cannot be encoded is refused there (TypeError) without taking a sequence,
  and later changes to the caller's objects do not change what is written.
- At most `max_queue` submissions wait; `submit` blocks and `append` awaits
  while the queue is full (back-pressure). A group holds at most
  `max_batch_events` events, unless one submission alone is larger.
- After a failed write the writer trusts the journal no more: every waiting
  future fails with that error and every later submission raises
  JournalError. The owner restarts from what the journal holds.

`append(..., inline=True)` writes in the caller's thread when the writer thread is idle and
nothing is queued: a lone commit (an order's hold when the service is quiet) then costs no
hand-off to the writer thread and back (two thread wake-ups, ~50-250 µs each on a busy 2-core
machine, and a GIL hand-over). It blocks the caller's event loop for that one commit, which is
what the caller awaits anyway; while it runs, later submissions queue and the writer thread
waits for it, so sequences stay gapless and in order. A busy writer is never bypassed, nor an
earlier `append` whose caller has not resumed yet (its result may be written and even resolved,
its task still waiting in the loop's queue): callers resume in the order of their sequences (a
shard sends its held orders to the book in that order, and the book refuses an order id below
one it has seen).

Groups are built as submissions arrive (records appended to one list, the
futures to resolve kept beside them), so that between two fsyncs the writer
thread does no Python work per submission except resolving thread futures.

The writer thread also counts its commits (`stats`: how long each transaction
took, how many events it held) in plain integers, for /metrics.
"""

from __future__ import annotations

import asyncio
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from journal.codec import encode_record
from journal.errors import JournalError
from journal.protocol import Journal

# An asyncio future and what to resolve it with: a sequence, None, or an error.
_LoopSettlement = tuple["asyncio.Future[Any]", Any]


# Upper bounds of the commit histograms' buckets (Prometheus `le`); the last bucket is +Inf.
COMMIT_SECONDS_BOUNDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
BATCH_EVENTS_BOUNDS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 4096)


class CommitStats:
    """Durations and sizes of the transactions that wrote events, as bucket counts.

    Written by the writer thread alone (or by an inline writer while that thread is held
    back), a few integer adds per commit; read from any
    thread (a reader may see a commit's duration before its size: fine for monitoring).
    """

    __slots__ = ("seconds_counts", "seconds_sum", "events_counts", "events_sum")

    def __init__(self) -> None:
        self.seconds_counts = [0] * (len(COMMIT_SECONDS_BOUNDS) + 1)
        self.seconds_sum = 0.0
        self.events_counts = [0] * (len(BATCH_EVENTS_BOUNDS) + 1)
        self.events_sum = 0

    def record(self, seconds: float, events: int) -> None:
        self.seconds_counts[bisect_left(COMMIT_SECONDS_BOUNDS, seconds)] += 1
        self.seconds_sum += seconds
        self.events_counts[bisect_left(BATCH_EVENTS_BOUNDS, events)] += 1
        self.events_sum += events

    def figures(self) -> dict:
        """The histograms as plain data: bounds, per-bucket (not cumulative) counts, sum."""
        return {"commit_seconds": {"bounds": list(COMMIT_SECONDS_BOUNDS), "counts": list(self.seconds_counts),
                                   "sum": self.seconds_sum},
                "batch_events": {"bounds": list(BATCH_EVENTS_BOUNDS), "counts": list(self.events_counts),
                                 "sum": self.events_sum}}


class _Group:
    """Submissions written together in one transaction, and whom to tell."""

    __slots__ = ("first_sequence", "records", "writes", "futures", "loop_futures", "submissions")

    def __init__(self, first_sequence: int) -> None:
        self.first_sequence = first_sequence
        self.records: list[bytes] = []
        self.writes: list[tuple[str, bytes, bytes]] = []  # the owner's table puts, same transaction
        self.futures: list[tuple[Future[int], int]] = []
        self.loop_futures: dict[asyncio.AbstractEventLoop, list[_LoopSettlement]] = {}
        self.submissions = 0


class GroupCommitWriter:
    """The single writer of a journal, coalescing concurrent appends."""

    def __init__(
        self, journal: Journal, *, max_batch_events: int = 4096, max_queue: int = 1024
    ) -> None:
        if max_batch_events < 1 or max_queue < 1:
            raise ValueError("max_batch_events and max_queue must be at least 1")
        self._journal = journal
        self._max_batch_events = max_batch_events
        self._max_queue = max_queue
        lock = threading.Lock()
        self._work_ready = threading.Condition(lock)
        self._space_free = threading.Condition(lock)
        # Guarded by the lock above. The last group is the open one.
        self._groups: deque[_Group] = deque()
        self._queued_submissions = 0
        self._next_sequence = journal.last_sequence() + 1
        self._writer_waiting = False
        self._inline = False  # a caller is writing in its own thread (`append(inline=True)`)
        # Queued `append`s whose callers have not resumed yet (guarded by the lock).
        self._unresumed = 0
        self._space_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closing = False
        self._failure: BaseException | None = None
        # Written by the writer thread only: transactions that wrote events, and their figures.
        self.commits = 0
        self.stats = CommitStats()
        self._thread = threading.Thread(target=self._run, name="journal-group-commit", daemon=True)
        self._thread.start()

    def __enter__(self) -> GroupCommitWriter:
        return self

    def __exit__(self, *exception_info: object) -> None:
        self.close()

    def submit(self, events: Sequence[Any], writes: Sequence[tuple[str, bytes, bytes]] = ()) -> Future[int]:
        """Queue events (and table puts written with them) for the next group; the future gives
        their last sequence once durable."""
        records = [encode_record(event) for event in events]
        future: Future[int] = Future()
        # A running future cannot be cancelled: once queued, the write happens anyway.
        future.set_running_or_notify_cancel()
        with self._space_free:
            while True:
                self._require_usable()
                if self._queued_submissions < self._max_queue:
                    group, last_sequence = self._add(records, writes)
                    group.futures.append((future, last_sequence))
                    return future
                self._space_free.wait()

    async def append(self, events: Sequence[Any], writes: Sequence[tuple[str, bytes, bytes]] = (),
                     *, inline: bool = False) -> int:
        """Write events (and table puts) through the group and return their last sequence, without
        blocking the loop; with `inline`, write them right here when the writer is idle (see above)."""
        # Until the first await below nothing yields to the loop: when the queue
        # has room, the events take their sequences in the order callers await.
        records = [encode_record(event) for event in events]
        if inline:
            written = self._write_inline(records, writes)
            if written is not None:
                return written
        loop = asyncio.get_running_loop()
        result: asyncio.Future[int] = loop.create_future()
        while True:
            # The lock is only ever held for queue bookkeeping, never across I/O.
            with self._space_free:
                self._require_usable()
                if self._queued_submissions < self._max_queue:
                    group, last_sequence = self._add(records, writes)
                    group.loop_futures.setdefault(loop, []).append((result, last_sequence))
                    self._unresumed += 1
                    break
                space: asyncio.Future[None] = loop.create_future()
                self._space_waiters.append((loop, space))
            await space
        # Cancelling the caller cancels only its wait: the events are still written.
        try:
            return await result
        finally:
            # Counted down in the caller's own task, once it runs again: only then may a later
            # append be written inline and resume before it.
            with self._work_ready:
                self._unresumed -= 1

    def _write_inline(self, records: list[bytes], writes: Sequence[tuple[str, bytes, bytes]]) -> int | None:
        """Write records now, in this thread, if the writer thread is idle with nothing queued;
        return their last sequence, or None (busy: the caller queues them as usual)."""
        with self._work_ready:
            if (self._groups or not self._writer_waiting or self._inline or self._unresumed
                    or self._failure is not None or self._closing):
                return None
            self._inline = True  # holds the writer thread back until this write is done
            first_sequence = self._next_sequence
            self._next_sequence += len(records)
        try:
            if records or writes:
                started = time.perf_counter()
                self._journal.append_encoded(first_sequence, records, writes)
                self.stats.record(time.perf_counter() - started, len(records))
                self.commits += 1
        except Exception as error:
            self._fail(_Group(first_sequence), error)  # what queued meanwhile fails too
            with self._work_ready:
                self._inline = False
                self._work_ready.notify()
            raise
        with self._work_ready:
            self._inline = False
            self._work_ready.notify()  # the writer thread may have been held back
        return first_sequence + len(records) - 1

    def flush(self) -> int:
        """Wait until everything submitted so far is durable; return the last sequence."""
        return self.submit([]).result()

    def close(self) -> None:
        """Write everything queued, then stop the writer thread; the journal stays open."""
        with self._work_ready:
            self._closing = True
            self._work_ready.notify()
        self._thread.join()

    def queued(self) -> int:
        """Submissions waiting for their commit (read without the lock: a gauge)."""
        return self._queued_submissions

    def _require_usable(self) -> None:
        if self._failure is not None:
            raise JournalError(
                "journal writer stopped after a failed write; restart from the journal"
            ) from self._failure
        if self._closing:
            raise JournalError("journal writer is closed")

    def _add(self, records: list[bytes], writes: Sequence[tuple[str, bytes, bytes]]) -> tuple[_Group, int]:
        """Put records into the open group; return it and their last sequence (lock held)."""
        group = self._groups[-1] if self._groups else None
        if group is None or (
            group.records and len(group.records) + len(records) > self._max_batch_events
        ):
            group = _Group(self._next_sequence)
            self._groups.append(group)
        group.records.extend(records)
        if writes:
            group.writes.extend(writes)
        group.submissions += 1
        self._queued_submissions += 1
        self._next_sequence += len(records)
        if self._writer_waiting:
            self._writer_waiting = False
            self._work_ready.notify()
        # An empty submission gets the sequence before it: once its group is
        # done, everything submitted earlier is durable.
        return group, self._next_sequence - 1

    def _run(self) -> None:
        while True:
            with self._work_ready:
                while self._inline or (not self._groups and not self._closing):
                    self._writer_waiting = True
                    self._work_ready.wait()
                if not self._groups:
                    return
                group = self._groups.popleft()
                self._queued_submissions -= group.submissions
                self._wake_space_waiters()
            try:
                if group.records or group.writes:
                    started = time.perf_counter()
                    self._journal.append_encoded(group.first_sequence, group.records, group.writes)
                    self.stats.record(time.perf_counter() - started, len(group.records))
            except Exception as error:
                self._fail(group, error)
                return
            if group.records or group.writes:
                self.commits += 1
            for future, last_sequence in group.futures:
                future.set_result(last_sequence)
            _resolve_in_loops(group.loop_futures)

    def _fail(self, group: _Group, error: BaseException) -> None:
        with self._work_ready:
            self._failure = error
            doomed = [group, *self._groups]
            self._groups.clear()
            self._queued_submissions = 0
            self._wake_space_waiters()
        for failed in doomed:
            for future, _ in failed.futures:
                future.set_exception(error)
            _resolve_in_loops(
                {
                    loop: [(loop_future, error) for loop_future, _ in settlements]
                    for loop, settlements in failed.loop_futures.items()
                }
            )

    def _wake_space_waiters(self) -> None:
        self._space_free.notify_all()
        if self._space_waiters:
            by_loop: dict[asyncio.AbstractEventLoop, list[_LoopSettlement]] = {}
            for loop, space in self._space_waiters:
                by_loop.setdefault(loop, []).append((space, None))
            self._space_waiters.clear()
            _resolve_in_loops(by_loop)


def _resolve_in_loops(settlements: dict[asyncio.AbstractEventLoop, list[_LoopSettlement]]) -> None:
    # One wake-up per event loop for a whole group rather than one per
    # submission: each call_soon_threadsafe costs the loop a self-pipe write.
    for loop, pairs in settlements.items():
        try:
            loop.call_soon_threadsafe(_resolve_here, pairs)
        except RuntimeError:
            pass  # that loop is closed; nobody is waiting on it any more


def _resolve_here(settlements: list[_LoopSettlement]) -> None:
    for loop_future, outcome in settlements:
        if loop_future.done():
            continue  # its caller was cancelled
        if isinstance(outcome, BaseException):
            loop_future.set_exception(outcome)
        else:
            loop_future.set_result(outcome)
