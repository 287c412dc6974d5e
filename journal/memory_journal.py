"""An in-memory journal with the same contract as `LmdbJournal`.

For tests of the packages that use a journal. Events are stored encoded, with
their checksums, and decoded on read, so what comes back is exactly what an
LMDB stream would return (JSON values, fresh objects). Nothing survives the
process. Methods may be called from several threads; `_guard` serializes them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from journal.codec import decode_chunk, decode_record, encode_record
from journal.errors import JournalError
from journal.rules import require_next_sequence, require_prunable, require_snapshot_sequence

MEMORY_STREAM = "<memory>"


class MemoryJournal:
    """A journal stream held in this process's memory."""

    def __init__(self) -> None:
        self._records: list[bytes] = []
        self._first_sequence = 1  # sequence of self._records[0]
        self._last_sequence = 0
        self._snapshots: dict[int, bytes] = {}
        self._latest_snapshot_sequence: int | None = None
        self.tables: dict[str, dict[bytes, bytes]] = {}  # table puts, for tests of the contract
        self._guard = threading.Lock()
        self._closed = False

    def __enter__(self) -> MemoryJournal:
        return self

    def __exit__(self, *exception_info: object) -> None:
        self.close()

    def append_batch(self, first_sequence: int, events: Sequence[Any]) -> int:
        """Write events as sequences first_sequence.. in one step; return the last one."""
        return self.append_encoded(first_sequence, [encode_record(event) for event in events])

    def append_encoded(self, first_sequence: int, records: Sequence[bytes],
                       writes: Sequence[tuple[str, bytes, bytes]] = ()) -> int:
        """Write records made by `encode_record` like `append_batch` writes events, and the
        (table, key, value) puts of `writes` in the same step."""
        with self._guard:
            self._require_open()
            require_next_sequence(MEMORY_STREAM, first_sequence, self._last_sequence)
            for table, key, value in writes:
                self.tables.setdefault(table, {})[key] = value
            self._records.extend(records)
            self._last_sequence += len(records)
            return self._last_sequence

    def read(self, start: int = 1, stop: int | None = None) -> Iterator[tuple[int, Any]]:
        """Yield decoded (sequence, event) pairs with start <= sequence < stop."""
        with self._guard:
            self._require_open()
            first = max(start, self._first_sequence)
            end = self._last_sequence + 1 if stop is None else min(stop, self._last_sequence + 1)
            records = self._records[first - self._first_sequence : max(end, first) - self._first_sequence]
        return decode_chunk(MEMORY_STREAM, first, records)

    def last_sequence(self) -> int:
        """Return the sequence of the last event ever appended, 0 for a new stream."""
        with self._guard:
            self._require_open()
            return self._last_sequence

    def write_snapshot(self, sequence: int, state: Any) -> None:
        """Store a state that covers the events up to and including sequence."""
        self.write_encoded_snapshot(sequence, [encode_record(state)])

    def write_encoded_snapshot(self, sequence: int, pieces: Sequence[bytes]) -> None:
        """Store a snapshot given as `encode_record`'s bytes, split anywhere into pieces."""
        record = b"".join(pieces)
        with self._guard:
            self._require_open()
            require_snapshot_sequence(
                MEMORY_STREAM, sequence, self._last_sequence, self._latest_snapshot_sequence
            )
            self._snapshots = {sequence: record}  # only the latest is ever read
            self._latest_snapshot_sequence = sequence

    def snapshot_sequence(self) -> int | None:
        """Return the sequence the latest snapshot covers, or None when there is none."""
        with self._guard:
            return self._latest_snapshot_sequence

    def load_snapshot(self) -> tuple[int, Any] | None:
        """Return the latest (sequence, state), or None when there is no snapshot."""
        with self._guard:
            self._require_open()
            sequence = self._latest_snapshot_sequence
            if sequence is None:
                return None
            record = self._snapshots[sequence]
        return sequence, decode_record(MEMORY_STREAM, sequence, record, kind="snapshot")

    def prune(self, before: int) -> int:
        """Drop events with sequence < before (at most latest snapshot + 1); return how many."""
        with self._guard:
            self._require_open()
            require_prunable(MEMORY_STREAM, before, self._latest_snapshot_sequence)
            removed = max(0, before - self._first_sequence)
            del self._records[:removed]
            self._first_sequence += removed
            for sequence in [s for s in self._snapshots if s < before - 1]:
                del self._snapshots[sequence]
            return removed

    def close(self) -> None:
        """Release the stream; further calls raise JournalError."""
        with self._guard:
            self._closed = True

    def _require_open(self) -> None:
        if self._closed:
            raise JournalError(f"journal stream {MEMORY_STREAM} is closed")

