"""Fixtures for the journal tests: the implementations under one contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from journal import Journal, LmdbJournal, MemoryJournal


@pytest.fixture(params=["lmdb", "memory"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Journal]:
    """Yield an empty journal of each implementation."""
    opened: Journal = LmdbJournal(tmp_path / "stream") if request.param == "lmdb" else MemoryJournal()
    yield opened
    opened.close()


@pytest.fixture
def stream_path(tmp_path: Path) -> Path:
    """Return the directory of an LMDB stream that does not exist yet."""
    return tmp_path / "stream"


def make_events(first_sequence: int, count: int) -> list[dict[str, object]]:
    """Return recognisable events whose content names their sequence."""
    return [
        {"sequence": sequence, "kind": "OrderAccepted", "price": sequence * 7, "note": f"ü-{sequence}"}
        for sequence in range(first_sequence, first_sequence + count)
    ]
