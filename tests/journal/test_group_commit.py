"""Group commit: concurrent appends, one transaction per group, durable in order."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path

import pytest

from journal import GroupCommitWriter, JournalError, LmdbJournal, MemoryJournal, SequenceGapError

# A stalled writer must fail a test, not hang it.
GATE_WATCHDOG_SECONDS = 20


class GatedJournal(MemoryJournal):
    """A MemoryJournal whose writes wait until the test opens the gate, to hold a group in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.write_started = threading.Event()
        self.gate = threading.Event()
        self.watchdog_fired = False
        self.watchdog = threading.Timer(GATE_WATCHDOG_SECONDS, self._open_by_watchdog)
        self.watchdog.daemon = True
        self.watchdog.start()

    def _open_by_watchdog(self) -> None:
        self.watchdog_fired = True
        self.gate.set()

    def append_encoded(self, first_sequence: int, records: Sequence[bytes], writes=()) -> int:
        self.write_started.set()
        self.gate.wait()
        return super().append_encoded(first_sequence, records, writes)


def submission_events(submitter: int, submission: int, count: int) -> list[list[object]]:
    """Return events that say who submitted them, so the journal can be checked against them."""
    return [[submitter, submission, index] for index in range(count)]


def assert_every_submission_stored_once(
    journal: LmdbJournal, results: list[tuple[list[list[object]], int]]
) -> None:
    stored = dict(journal.read())
    total = sum(len(events) for events, _ in results)
    assert sorted(stored) == list(range(1, total + 1))
    for events, last_sequence in results:
        first_sequence = last_sequence - len(events) + 1
        assert [stored[sequence] for sequence in range(first_sequence, last_sequence + 1)] == events


@pytest.fixture
def lmdb_journal(stream_path: Path) -> Iterator[LmdbJournal]:
    with LmdbJournal(stream_path) as journal:
        yield journal


@pytest.fixture
def gated_journal() -> Iterator[GatedJournal]:
    journal = GatedJournal()
    yield journal
    journal.watchdog.cancel()


class TestGroupCommitWriter:
    def test_concurrent_submitters_store_every_event_once_gapless_with_right_sequences(
        self, lmdb_journal: LmdbJournal
    ) -> None:
        submitters, submissions_each = 16, 40
        start = threading.Barrier(submitters)
        futures: list[list[tuple[list[list[object]], Future[int]]]] = [[] for _ in range(submitters)]

        def submit_many(submitter: int) -> None:
            rng = random.Random(submitter)
            start.wait()
            for submission in range(submissions_each):
                events = submission_events(submitter, submission, rng.randint(1, 5))
                futures[submitter].append((events, writer.submit(events)))
                if submission % 4 == 0:
                    futures[submitter][-1][1].result()

        with GroupCommitWriter(lmdb_journal, max_queue=64) as writer:
            threads = [threading.Thread(target=submit_many, args=(index,)) for index in range(submitters)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            results = [(events, future.result()) for own in futures for events, future in own]
        assert_every_submission_stored_once(lmdb_journal, results)
        # Within one submitter, sequences follow its submission order.
        for own in futures:
            lasts = [future.result() for _, future in own]
            assert lasts == sorted(lasts)
        assert 0 < writer.commits < submitters * submissions_each

    def test_queue_of_one_still_stores_every_submission(self, lmdb_journal: LmdbJournal) -> None:
        results: list[tuple[list[list[object]], int]] = []
        guard = threading.Lock()

        def submit_many(submitter: int) -> None:
            for submission in range(25):
                events = submission_events(submitter, submission, 2)
                last_sequence = writer.submit(events).result()
                with guard:
                    results.append((events, last_sequence))

        with GroupCommitWriter(lmdb_journal, max_queue=1, max_batch_events=3) as writer:
            threads = [threading.Thread(target=submit_many, args=(index,)) for index in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert_every_submission_stored_once(lmdb_journal, results)

    def test_async_append_from_many_tasks_returns_durable_sequences(
        self, lmdb_journal: LmdbJournal
    ) -> None:
        async def append_all(writer: GroupCommitWriter) -> list[tuple[list[list[object]], int]]:
            async def one_task(task: int) -> list[tuple[list[list[object]], int]]:
                results = []
                for submission in range(10):
                    events = submission_events(task, submission, 1 + (task + submission) % 4)
                    results.append((events, await writer.append(events)))
                return results

            per_task = await asyncio.gather(*(one_task(task) for task in range(30)))
            return [result for results in per_task for result in results]

        # A queue of two makes most tasks wait for space on the event loop.
        with GroupCommitWriter(lmdb_journal, max_queue=2) as writer:
            results = asyncio.run(append_all(writer))
        assert_every_submission_stored_once(lmdb_journal, results)
        assert writer.commits < len(results)

    def test_submissions_waiting_during_a_write_go_in_one_transaction(
        self, gated_journal: GatedJournal
    ) -> None:
        journal = gated_journal
        with GroupCommitWriter(journal) as writer:
            first = writer.submit(["first"])
            journal.write_started.wait()
            waiting = [writer.submit([index, index]) for index in range(10)]
            journal.gate.set()
            assert first.result() == 1
            assert [future.result() for future in waiting] == list(range(3, 22, 2))
            assert writer.commits == 2
        assert not journal.watchdog_fired

    def test_group_larger_than_max_batch_events_is_split_in_submission_order(
        self, gated_journal: GatedJournal
    ) -> None:
        journal = gated_journal
        with GroupCommitWriter(journal, max_batch_events=5) as writer:
            writer.submit(["first"])
            journal.write_started.wait()
            waiting = [writer.submit([index, index]) for index in range(10)]
            oversized = writer.submit(list(range(7)))
            journal.gate.set()
            assert [future.result() for future in waiting] == list(range(3, 22, 2))
            assert oversized.result() == 28
            # One write in flight, then groups of two submissions (4 events), then the oversized one alone.
            assert writer.commits == 1 + 5 + 1
        assert not journal.watchdog_fired
        assert [event for _, event in journal.read(22)] == list(range(7))

    def test_async_append_on_full_queue_awaits_without_blocking_the_loop(
        self, gated_journal: GatedJournal
    ) -> None:
        journal = gated_journal
        order: list[str] = []

        async def fill_then_append(writer: GroupCommitWriter) -> int:
            async def open_gate() -> None:
                order.append("loop ran while the queue was full")
                journal.gate.set()

            # Tasks start in the order they are scheduled: the append meets the
            # full queue first. Only open_gate can free the queue, so if the
            # append blocked the loop, the watchdog would have to open the gate.
            waiting = asyncio.ensure_future(writer.append(["third"]))
            await asyncio.gather(open_gate(), waiting)
            order.append("append returned")
            return waiting.result()

        with GroupCommitWriter(journal, max_queue=1) as writer:
            in_flight = writer.submit(["first"])
            journal.write_started.wait()
            queued = writer.submit(["second"])  # the queue of one is now full
            assert asyncio.run(fill_then_append(writer)) == 3
            assert (in_flight.result(), queued.result()) == (1, 2)
        assert not journal.watchdog_fired
        assert order == ["loop ran while the queue was full", "append returned"]
        assert [event for _, event in journal.read()] == ["first", "second", "third"]

    def test_sequences_start_after_existing_events(self, lmdb_journal: LmdbJournal) -> None:
        lmdb_journal.append_batch(1, ["before"] * 5)
        with GroupCommitWriter(lmdb_journal) as writer:
            assert writer.submit(["a", "b"]).result() == 7
            assert writer.flush() == 7
        assert [event for _, event in lmdb_journal.read(6)] == ["a", "b"]

    def test_empty_submission_resolves_to_previous_sequence(self, lmdb_journal: LmdbJournal) -> None:
        with GroupCommitWriter(lmdb_journal) as writer:
            assert writer.submit([]).result() == 0
            writer.submit(["x", "y", "z"])
            assert writer.submit([]).result() == 3

    def test_unencodable_event_raises_at_submit_and_writer_continues(
        self, lmdb_journal: LmdbJournal
    ) -> None:
        with GroupCommitWriter(lmdb_journal) as writer:
            with pytest.raises(TypeError):
                writer.submit([{"set": {1, 2}}])
            assert writer.submit(["fine"]).result() == 1
        assert lmdb_journal.last_sequence() == 1

    def test_close_writes_everything_queued(self, lmdb_journal: LmdbJournal) -> None:
        writer = GroupCommitWriter(lmdb_journal)
        futures = [writer.submit([index]) for index in range(500)]
        writer.close()
        assert [future.result() for future in futures] == list(range(1, 501))
        assert [event for _, event in lmdb_journal.read()] == list(range(500))
        with pytest.raises(JournalError, match="closed"):
            writer.submit([1])

    def test_failed_write_fails_its_group_and_refuses_later_submissions(
        self, lmdb_journal: LmdbJournal
    ) -> None:
        writer = GroupCommitWriter(lmdb_journal)
        # Someone else writing to the journal breaks the writer's numbering.
        lmdb_journal.append_batch(1, ["intruder"])
        failed = writer.submit(["mine"])
        with pytest.raises(SequenceGapError):
            failed.result()
        with pytest.raises(JournalError, match="failed write") as caught:
            writer.submit(["later"])
        assert isinstance(caught.value.__cause__, SequenceGapError)
        with pytest.raises(JournalError, match="failed write"):
            asyncio.run(writer.append(["later"]))
        writer.close()
        assert [event for _, event in lmdb_journal.read()] == ["intruder"]


class ThreadRecordingJournal(GatedJournal):
    """A GatedJournal (gate open unless a test closes it) that records which thread made each write."""

    def __init__(self) -> None:
        super().__init__()
        self.gate.set()
        self.threads: list[tuple[str, object]] = []  # (thread name, first record's event)

    def append_encoded(self, first_sequence: int, records: Sequence[bytes], writes=()) -> int:
        self.threads.append((threading.current_thread().name, first_sequence))
        return super().append_encoded(first_sequence, records, writes)


def wait_until_idle(writer: GroupCommitWriter) -> None:
    """Return once the writer thread waits for work with nothing queued (bounded: fails, never hangs)."""
    with writer._work_ready:
        for _ in range(GATE_WATCHDOG_SECONDS * 1000):
            if writer._writer_waiting and not writer._groups:
                return
            writer._work_ready.wait(0.001)
    raise AssertionError("the writer thread never went idle")


class TestInlineAppend:
    """`append(inline=True)`: the caller writes when the writer thread is idle (issue 12)."""

    def test_idle_writer_lets_the_caller_write_in_its_own_thread(self) -> None:
        journal = ThreadRecordingJournal()
        with GroupCommitWriter(journal) as writer:
            wait_until_idle(writer)
            assert asyncio.run(writer.append(["inline", "too"], inline=True)) == 2
            assert journal.threads == [(threading.current_thread().name, 1)]
            assert writer.commits == 1
            # The writer thread goes on after it, with the next sequences.
            assert writer.submit(["queued"]).result() == 3
        assert [event for _, event in journal.read()] == ["inline", "too", "queued"]
        assert journal.threads[-1][0] == "journal-group-commit"
        journal.watchdog.cancel()

    def test_busy_writer_is_never_bypassed(self, gated_journal: GatedJournal) -> None:
        journal = gated_journal
        with GroupCommitWriter(journal) as writer:
            in_flight = writer.submit(["first"])
            journal.write_started.wait()

            async def append_while_busy() -> int:
                waiting = asyncio.ensure_future(writer.append(["second"], inline=True))
                await asyncio.sleep(0)  # let it try: the writer is busy, so it queues
                journal.gate.set()
                return await waiting

            assert asyncio.run(append_while_busy()) == 2
            assert in_flight.result() == 1
            assert writer.commits == 2
        assert not journal.watchdog_fired
        assert [event for _, event in journal.read()] == ["first", "second"]

    def test_submissions_during_an_inline_write_wait_for_it(self) -> None:
        journal = ThreadRecordingJournal()
        with GroupCommitWriter(journal) as writer:
            wait_until_idle(writer)
            journal.gate.clear()
            journal.write_started.clear()
            inline_result: list[int] = []
            inline = threading.Thread(target=lambda: inline_result.append(
                asyncio.run(writer.append(["inline"], inline=True))), name="inline-caller")
            inline.start()
            journal.write_started.wait()
            later = writer.submit(["later"])  # must not be written before the inline write ends
            assert not later.done()
            journal.gate.set()
            inline.join()
            assert inline_result == [1]
            assert later.result() == 2
        journal.watchdog.cancel()
        assert not journal.watchdog_fired
        assert [name for name, _ in journal.threads] == ["inline-caller", "journal-group-commit"]
        assert [event for _, event in journal.read()] == ["inline", "later"]

    def test_an_earlier_append_not_yet_delivered_in_its_loop_keeps_the_order(self) -> None:
        # A shard sends held orders to its book as their appends return: a later append written
        # inline must not return before an earlier one's result has reached the loop.
        journal = ThreadRecordingJournal()
        resumed: list[str] = []

        async def append_then(name: str, inline: bool) -> None:
            await writer.append([name], inline=inline)
            resumed.append(name)

        async def scenario() -> None:
            earlier = asyncio.ensure_future(append_then("earlier", False))
            await asyncio.sleep(0)  # it queues its record
            # Block this loop (no await) until the writer has written it and gone idle: its
            # result now waits in this loop's queue.
            wait_until_idle(writer)
            assert writer.commits == 1 and not resumed
            await append_then("later", True)
            await earlier

        with GroupCommitWriter(journal) as writer:
            wait_until_idle(writer)
            asyncio.run(scenario())
        assert resumed == ["earlier", "later"]
        assert [event for _, event in journal.read()] == ["earlier", "later"]
        assert [name for name, _ in journal.threads] == ["journal-group-commit"] * 2
        journal.watchdog.cancel()

    def test_an_earlier_append_resolved_but_not_resumed_keeps_the_order(self) -> None:
        # The loop's queue holds, in this order: a later caller's start, the earlier append's
        # result, then (once that result is set) the earlier caller's own step. The later one
        # must not write inline and resume in between.
        journal = ThreadRecordingJournal()
        resumed: list[str] = []

        async def append_then(name: str, inline: bool) -> None:
            await writer.append([name], inline=inline)
            resumed.append(name)

        async def scenario() -> None:
            loop = asyncio.get_running_loop()
            journal.gate.clear()
            earlier = asyncio.ensure_future(append_then("earlier", False))
            await asyncio.sleep(0)  # it queues its record; the writer thread waits at the gate
            journal.write_started.wait()
            later: list[asyncio.Future] = []
            loop.call_soon(lambda: later.append(asyncio.ensure_future(append_then("later", True))))
            journal.gate.set()
            wait_until_idle(writer)  # blocks this loop: the result is now queued behind `later`'s start
            await earlier
            await later[0]

        with GroupCommitWriter(journal) as writer:
            wait_until_idle(writer)
            journal.write_started.clear()
            asyncio.run(scenario())
        journal.watchdog.cancel()
        assert resumed == ["earlier", "later"]
        assert [event for _, event in journal.read()] == ["earlier", "later"]

    def test_failed_inline_write_fails_the_writer(self, lmdb_journal: LmdbJournal) -> None:
        writer = GroupCommitWriter(lmdb_journal)
        wait_until_idle(writer)
        lmdb_journal.append_batch(1, ["intruder"])
        with pytest.raises(SequenceGapError):
            asyncio.run(writer.append(["mine"], inline=True))
        with pytest.raises(JournalError, match="failed write"):
            writer.submit(["later"])
        writer.close()
        assert [event for _, event in lmdb_journal.read()] == ["intruder"]
