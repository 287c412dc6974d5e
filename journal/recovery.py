"""Recovery: the latest snapshot and the events after it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from journal.protocol import Journal


def recover(journal: Journal) -> tuple[Any | None, int, Iterator[tuple[int, Any]]]:
    """Return (snapshot state or None, sequence it covers or 0, events after it)."""
    snapshot = journal.load_snapshot()
    if snapshot is None:
        return None, 0, journal.read(1)
    sequence, state = snapshot
    return state, sequence, journal.read(sequence + 1)
