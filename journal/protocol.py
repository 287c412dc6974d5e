"""The storage contract every journal implementation keeps.

A journal is one append-only stream of events with a gapless sequence that
starts at 1, written by a single owner. Events are orjson-serializable values
and come back decoded (tuples as lists, as JSON has them). Snapshots carry
an owner's state together with the last sequence they cover; recovery is the
latest snapshot plus the events after it. Pruning drops only events that the
latest snapshot already covers, and `last_sequence` survives pruning.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol


class Journal(Protocol):
    """An append-only event stream with snapshots; see the module docstring."""

    def append_batch(self, first_sequence: int, events: Sequence[Any]) -> int:
        """Write events as sequences first_sequence.. in one transaction; return the last one."""
        ...

    def append_encoded(self, first_sequence: int, records: Sequence[bytes],
                       writes: Sequence[tuple[str, bytes, bytes]] = ()) -> int:
        """Write records made by `encode_record` like `append_batch` writes events, and the
        owner's (table, key, value) puts of `writes` in the same transaction: both or neither."""
        # For GroupCommitWriter, which encodes at submission so that an event
        # that cannot be encoded is refused before it takes a sequence number.
        ...

    def read(self, start: int = 1, stop: int | None = None) -> Iterator[tuple[int, Any]]:
        """Yield verified, decoded (sequence, event) pairs with start <= sequence < stop."""
        ...

    def last_sequence(self) -> int:
        """Return the sequence of the last event ever appended, 0 for a new stream."""
        ...

    def write_snapshot(self, sequence: int, state: Any) -> None:
        """Store a state that covers the events up to and including sequence."""
        ...

    def write_encoded_snapshot(self, sequence: int, pieces: Sequence[bytes]) -> None:
        """Store a snapshot given as `encode_record`'s bytes, split anywhere into pieces; it
        becomes the latest (and the older ones are dropped) once wholly stored."""
        ...

    def snapshot_sequence(self) -> int | None:
        """Return the sequence the latest snapshot covers, or None when there is none."""
        ...

    def load_snapshot(self) -> tuple[int, Any] | None:
        """Return the latest (sequence, state), or None when there is no snapshot."""
        ...

    def prune(self, before: int) -> int:
        """Drop events with sequence < before (at most latest snapshot + 1); return how many."""
        ...

    def close(self) -> None:
        """Release the stream; further calls raise JournalError."""
        ...
