"""Acknowledged events survive SIGKILL of the writing process, cycle after cycle."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import NamedTuple

from journal import LmdbJournal
from tests.journal.crash_writer import batch_size, expected_events

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
WRITER_SCRIPT = Path(__file__).with_name("crash_writer.py")
CYCLES = 12
# A hung writer must fail the test, not hang it.
WATCHDOG_SECONDS = 60


class Acknowledgement(NamedTuple):
    cycle: int
    thread: int
    batch: int
    first_sequence: int
    last_sequence: int


def parse_acknowledgement(line: str) -> Acknowledgement:
    """Read one `ack CYCLE THREAD BATCH FIRST LAST` line of crash_writer.py."""
    word, *numbers = line.split()
    assert word == "ack" and len(numbers) == 5, line
    return Acknowledgement(*map(int, numbers))


def run_until_acknowledged(stream_path: Path, cycle: int, acknowledgements: int) -> list[str]:
    """Start the writer, read that many ack lines, kill it with SIGKILL; return the lines."""
    process = subprocess.Popen(
        [sys.executable, str(WRITER_SCRIPT), str(stream_path), str(cycle)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY_ROOT)},
    )
    watchdog = threading.Timer(WATCHDOG_SECONDS, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(acknowledgements)]
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        watchdog.cancel()
    assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
    assert all(line.startswith("ack ") for line in lines), (lines, process.stderr.read() if process.stderr else "")
    return lines


def test_writer_killed_at_random_moments_keeps_every_acknowledged_event(tmp_path: Path) -> None:
    stream_path = tmp_path / "stream"
    rng = random.Random(20240613)
    acknowledged: list[Acknowledgement] = []
    markers: dict[int, dict[str, int]] = {}
    for cycle in range(CYCLES):
        lines = run_until_acknowledged(stream_path, cycle, rng.randint(1, 60))
        acknowledged.extend(map(parse_acknowledgement, lines))

        with LmdbJournal(stream_path) as journal:
            # read() verifies every checksum and that sequences run 1..last without a hole.
            stored = dict(journal.read())
            last_sequence = journal.last_sequence()
            assert sorted(stored) == list(range(1, last_sequence + 1))
            for ack_cycle, thread, batch, first, last in acknowledged:
                events = expected_events(ack_cycle, thread, batch, batch_size(ack_cycle, thread, batch))
                assert last - first + 1 == len(events)
                lost = [sequence for sequence in range(first, last + 1) if sequence not in stored]
                assert not lost, f"acknowledged events lost after cycle {cycle}: {lost}"
                assert [stored[sequence] for sequence in range(first, last + 1)] == events
            for sequence, marker in markers.items():
                assert stored[sequence] == marker
            # The reopened stream takes new appends where the killed writer stopped.
            marker = {"marker_after_cycle": cycle}
            assert journal.append_batch(last_sequence + 1, [marker]) == last_sequence + 1
            markers[last_sequence + 1] = marker
    assert len(acknowledged) >= CYCLES
