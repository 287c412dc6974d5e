"""The journaling shell's snapshots: taken by events and by time, spaced by what they cost."""

from __future__ import annotations

import asyncio

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
