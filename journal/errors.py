"""The journal's faults, under one root.

Every fault the journal raises on purpose is a `JournalError`. Misuse of an
argument that has nothing to do with stored data (a snapshot beyond the last
event, pruning past the latest snapshot) is a `ValueError`, and an event that
cannot be encoded is orjson's `TypeError`, raised before anything is written.
"""

from __future__ import annotations


class JournalError(Exception):
    """Root of the journal's faults."""


class SequenceGapError(JournalError):
    """An append whose first sequence is not the next one of the stream."""


class CorruptRecordError(JournalError):
    """A stored record that fails its checksum, cannot be decoded, or is missing."""

    def __init__(self, stream: str, sequence: int, problem: str) -> None:
        super().__init__(f"journal stream {stream}: {problem} at sequence {sequence}")
        self.stream = stream
        self.sequence = sequence


class JournalLockedError(JournalError):
    """A second writer on a stream that another owner holds."""
