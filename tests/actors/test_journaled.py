"""The journaling shell's snapshots: taken by events and by time, spaced by what they cost."""

from __future__ import annotations

import asyncio
import os

from actors import journaled
from actors.journaled import JournaledState


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now


def test_a_costly_snapshot_spaces_the_next_one_so_snapshots_take_a_bounded_share_of_the_time(tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(journaled.time, "monotonic", clock.monotonic)
    taken: list[int] = []

    def snapshot() -> dict:
        clock.now += 1.0  # this state takes a second to capture and write
        taken.append(len(taken))
        return {"n": len(taken)}

    async def append_one(state: JournaledState) -> None:
        await state.append([{"event": 1}])
        if state._snapshot_task is not None:
            await state._snapshot_task

    async def scenario() -> list[int | None]:
        state = JournaledState(tmp_path / "stream", sync=False, snapshot=snapshot, snapshot_every=1,
                               snapshot_seconds=3600.0)
        try:
            seen = []
            await append_one(state)  # the first event: the first snapshot, which took 1 s
            seen.append(state.journal.snapshot_sequence())
            clock.now += 10.0  # well past `snapshot_every`, but 1 s is more than 2% of 10 s
            for _ in range(20):
                await append_one(state)
            seen.append(state.journal.snapshot_sequence())
            clock.now += 45.0  # 55 s since the last: 1 s is now under 2% of it
            await append_one(state)
            seen.append(state.journal.snapshot_sequence())
            return seen
        finally:
            state.close()

    assert asyncio.run(scenario()) == [1, 1, 22]
    assert taken == [0, 1]


def test_a_forked_snapshot_holds_the_state_as_it_was_at_its_marker_while_the_actor_goes_on(tmp_path):
    """Past `fork_above_bytes` a child process builds and encodes the state; the owner mutates
    its live state right after the fork, and the snapshot must not see that."""
    live = {"orders": [[1, "alice", 100]], "pid": None}

    def snapshot() -> dict:
        live["pid"] = os.getpid()  # in the child: its own pid, never the test's
        return live  # the live object, not a copy: only the fork keeps it still

    async def scenario() -> tuple:
        state = JournaledState(tmp_path / "stream", sync=False, snapshot=snapshot, snapshot_every=1,
                               snapshot_seconds=3600.0, fork_above_bytes=-1)
        try:
            await state.append([{"event": 1}])
            live["orders"].append([2, "bob", 200])  # after the fork, before the child is read
            await state._snapshot_task
            return state.journal.load_snapshot(), live["pid"]
        finally:
            state.close()

    (sequence, stored), pid_seen_here = asyncio.run(scenario())
    assert sequence == 1
    assert stored["orders"] == [[1, "alice", 100]]
    assert stored["pid"] != os.getpid() and pid_seen_here is None


def test_a_failed_snapshot_child_skips_that_snapshot_and_the_next_one_is_taken(tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(journaled.time, "monotonic", clock.monotonic)
    calls = []

    def snapshot() -> dict:
        calls.append(1)
        if os.getpid() != parent:
            raise RuntimeError("the child cannot build this state")
        return {"n": len(calls)}

    parent = os.getpid()

    async def scenario() -> list:
        state = JournaledState(tmp_path / "stream", sync=False, snapshot=snapshot, snapshot_every=1,
                               snapshot_seconds=3600.0, fork_above_bytes=-1)
        try:
            await state.append([{"event": 1}])
            await state._snapshot_task
            seen = [state.journal.snapshot_sequence()]
            state._fork_above_bytes = 1 << 40  # the next one in process
            clock.now += 3600.0
            await state.append([{"event": 2}])
            await state._snapshot_task
            seen.append(state.journal.load_snapshot())
            return seen
        finally:
            state.close()

    assert asyncio.run(scenario()) == [None, (2, {"n": 1})]


def test_after_a_restart_a_state_recovered_from_a_large_snapshot_is_snapshotted_by_a_child_from_the_first(tmp_path):
    def snapshot() -> dict:
        return {"pid": os.getpid(), "padding": "x" * 100}

    async def run_once(first: bool) -> int:
        state = JournaledState(tmp_path / "stream", sync=False, snapshot=snapshot, snapshot_every=1,
                               snapshot_seconds=3600.0, fork_above_bytes=50)
        try:
            state.replay(lambda loaded: None, lambda record: None)
            await state.append([{"event": 1 if first else 2}])
            await state._snapshot_task
            return state.journal.load_snapshot()[1]["pid"]
        finally:
            state.close()

    assert asyncio.run(run_once(True)) == os.getpid()  # nothing known yet: in process
    assert asyncio.run(run_once(False)) != os.getpid()  # recovered from 100+ bytes: forked
