"""The journaling shell every actor shares: recover, append in order, snapshot.

An actor's state changes in memory first, synchronously, and the events are
submitted to its journal in that same order before the actor yields to any
other call; they become durable in that order. A journal that fails to write
is not trusted: the process exits so that Ray restarts the actor from what
the journal holds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from actors.snapshot_capture import capture
from journal import GroupCommitWriter, JournalLockedError, LmdbJournal, encode_record, recover
from journal.lmdb_journal import DEFAULT_MAP_SIZE

log = logging.getLogger(__name__)

Write = tuple[str, bytes, bytes]  # (table, key, value): a put into the owner's table

# An actor's state is millions of small long-lived objects (orders, transactions) with no
# reference cycles. Left to the collector they are scanned again and again by full
# collections, which showed up as a fifth of a shard's time; frozen, they are skipped.
_FREEZE_EVERY = 50_000  # journal records between freezes
_YOUNG_THRESHOLD = 20_000  # allocations between young collections (Python's default: 700)


# A snapshot costs time in proportion to the hot state (about 2 us per open order to build,
# 0.4 us to encode; actors/snapshot_capture.py), spent in a forked child once the state is
# large, so the actor stops only for the fork. Snapshots are spaced so that they take at most
# this share of the time: with a large state they come less often than
# `snapshot_every`/`snapshot_seconds` ask, never more often.
_SNAPSHOT_TIME_SHARE = 0.02
# Encoded bytes of the last snapshot above which the next one is taken by a forked child
# (a fork costs ~5-20 ms; building and encoding in process costs that at ~5,000 orders).
FORK_ABOVE_BYTES = 1 << 20

# Events an awaited append may hold and still be written in the caller's thread when the
# writer is idle (see `append`): a single order's hold, or a book's record of one order.
_INLINE_MOST_EVENTS = 8


def _settle_heap() -> None:
    gc.set_threshold(_YOUNG_THRESHOLD, 20, 20)
    gc.freeze()


# A restarted actor may start while its killed predecessor's process is still
# being torn down; the kernel frees the journal lock when it is gone.
_LOCK_WAIT_SECONDS = 30.0


class JournaledState:
    """One actor's journal: replay on open, ordered appends, small and frequent snapshots.

    A snapshot is the owner's hot state (`snapshot()`), taken once `snapshot_every` events
    were written since the last one, or `snapshot_seconds` passed with any written; the
    state is built on the event loop (it is small: what decides the next command, not
    history) and written from a thread. With `retention` set, the journal keeps only that
    many records before the latest snapshot; by default it keeps everything (`replay --at`
    reads it)."""

    def __init__(self, path: os.PathLike, *, sync: bool, snapshot: Callable[[], Any], snapshot_every: int,
                 snapshot_seconds: float = 60.0, retention: int | None = None, map_size: int = DEFAULT_MAP_SIZE,
                 tables: dict[str, bool] | None = None, create_tables: bool = True,
                 fork_above_bytes: int = FORK_ABOVE_BYTES) -> None:
        self.journal = _open_when_free(path, sync, map_size, tables, create_tables)
        self._fork_above_bytes = fork_above_bytes
        self._snapshot_bytes = 0  # the size of the last snapshot taken
        self.writer = GroupCommitWriter(self.journal, max_queue=1 << 30)
        self._snapshot_state = snapshot
        self._snapshot_every = snapshot_every
        self._snapshot_seconds = snapshot_seconds
        self._retention = retention
        self._since_snapshot = 0
        self._last_snapshot = time.monotonic()
        self._snapshot_cost = 0.0  # seconds the last snapshot took, capture to written
        self._since_freeze = 0
        self._snapshotting = False
        self._snapshot_task: asyncio.Task | None = None

    def replay(self, load_state: Callable[[Any], None], apply: Callable[[Any], None],
               until: int | None = None) -> int:
        """Feed the latest snapshot and every later record to the owner; return the record count.

        With `until`, stop after that sequence (for investigations): the snapshot is used
        only if it covers no more than that, else the journal is replayed from its start.
        """
        state, covered, records = recover(self.journal)
        if until is not None and covered > until:
            state, records = None, self.journal.read(1, until + 1)
        elif until is not None:
            records = self.journal.read(covered + 1, until + 1)
        if state is not None:
            load_state(state)
            self._snapshot_bytes = self.journal.loaded_snapshot_bytes  # a large state forks from the first
        count = 0
        for _, record in records:
            apply(record)
            count += 1
        _settle_heap()
        return count

    async def append(self, records: list, writes: Sequence[Write] = (), events: int | None = None) -> int:
        """Submit records (and the owner's table puts, same transaction) now, keeping the caller's
        order, and wait until they are durable. `events`: how many events they hold (default: one
        per record), for the snapshot count."""
        self._count(len(records) if events is None else events)
        try:
            # `append` takes its sequence numbers before it first suspends (the queue never
            # fills at this size), so records reach the journal in the order of the calls.
            # Issue 12: when the writer is idle a small commit (a single order's hold or match)
            # is made right here (`inline`), saving the two thread hand-offs of group commit on
            # a quiet service. Not for large ones (a batch's hundreds of events: the loop would
            # be blocked for longer while other calls wait), nor while a snapshot is being
            # written from a thread (the loop would wait for it).
            inline = (len(records) if events is None else events) <= _INLINE_MOST_EVENTS and not self._snapshotting
            return await self.writer.append(records, writes, inline=inline)
        except Exception as error:
            _exit_after_failed_write(error)

    def submit(self, records: list, writes: Sequence[Write] = ()) -> asyncio.Future:
        """Queue records (and table puts) now, in the caller's order; the returned future
        resolves once durable."""
        self._count(len(records))
        return self._durable(records, writes)

    def _count(self, events: int) -> None:
        self._since_snapshot += events
        self._since_freeze += events
        if self._since_freeze >= _FREEZE_EVERY:
            self._since_freeze = 0
            _settle_heap()
        if self._snapshotting or not self._since_snapshot:
            return
        elapsed = time.monotonic() - self._last_snapshot
        if elapsed * _SNAPSHOT_TIME_SHARE < self._snapshot_cost:
            return
        if self._since_snapshot >= self._snapshot_every or elapsed >= self._snapshot_seconds:
            self._start_snapshot()

    def _start_snapshot(self) -> None:
        self._snapshotting = True
        self._snapshot_task = asyncio.get_running_loop().create_task(self._snapshot())

    def _durable(self, records: list, writes: Sequence[Write] = ()) -> asyncio.Future:
        # Whoever awaits the future, a failed write ends the process, as `append` does: an
        # actor that stayed up with a dead writer would answer from state it never journaled
        # and fail every later write to its callers (a book's delivery loop stopped on one).
        try:
            written = self.writer.submit(records, writes)
        except Exception as error:
            _exit_after_failed_write(error)
        written.add_done_callback(_exit_if_failed)
        return asyncio.wrap_future(written)

    async def _snapshot(self) -> None:
        # The state and the marker are taken together, with no await between them,
        # so the snapshot covers exactly what was submitted before the marker.
        try:
            started = time.monotonic()
            taken = capture(self._snapshot_state, fork=self._snapshot_bytes > self._fork_above_bytes)
            self._since_snapshot = 0
            self._last_snapshot = time.monotonic()
            sequence = await self._durable([])
            pieces = await asyncio.to_thread(taken.collect)
            if pieces is not None:
                self._snapshot_bytes = sum(map(len, pieces))
                await asyncio.to_thread(self._write_encoded_snapshot, sequence, pieces)
            self._snapshot_cost = time.monotonic() - started
        finally:
            self._snapshotting = False

    def write_snapshot_now(self) -> None:
        """Write a snapshot of everything journaled so far (no appends may be under way)."""
        self._write_snapshot(self.writer.flush(), self._snapshot_state())

    def _write_snapshot(self, sequence: int, state: Any) -> None:
        self._write_encoded_snapshot(sequence, [encode_record(state)])

    def _write_encoded_snapshot(self, sequence: int, pieces: list[bytes]) -> None:
        latest = self.journal.snapshot_sequence()
        if latest is not None and latest >= sequence:
            return  # nothing new since the last one
        self.journal.write_encoded_snapshot(sequence, pieces)
        if self._retention is not None and sequence + 1 - self._retention > 1:
            self.journal.prune(sequence + 1 - self._retention)

    async def flush(self) -> int:
        """Wait until everything submitted so far is durable; return the last sequence."""
        return await self._durable([])

    def metrics(self, actor: str) -> dict:
        """This actor's own figures for /metrics: its journal's commits and queue, its memory."""
        return {"actor": actor, "memory_bytes": anonymous_resident_bytes(),
                "journal": {**self.writer.stats.figures(), "queued": self.writer.queued()}}

    def close(self) -> None:
        self.writer.close()
        self.journal.close()


def anonymous_resident_bytes() -> int | None:
    """This process's anonymous resident memory (RssAnon: its heap, not mapped files such as
    the LMDB maps or shared libraries), or None where /proc does not say."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"RssAnon:"):
                    return int(line.split()[1]) * 1024  # in kB
    except OSError:
        pass
    return None



def _exit_if_failed(written: concurrent.futures.Future) -> None:
    error = written.exception()
    if error is not None:
        _exit_after_failed_write(error)


def _exit_after_failed_write(error: BaseException) -> NoReturn:
    log.critical("journal write failed; exiting so that the actor restarts from its journal", exc_info=error)
    os._exit(70)


def _open_when_free(path: os.PathLike, sync: bool, map_size: int, tables: dict[str, bool] | None,
                    create_tables: bool) -> LmdbJournal:
    deadline = time.monotonic() + _LOCK_WAIT_SECONDS
    while True:
        try:
            return LmdbJournal(path, sync=sync, map_size=map_size, tables=tables, create_tables=create_tables)
        except JournalLockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
