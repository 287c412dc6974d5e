"""The refusals every journal implementation makes, in one place.

Both `LmdbJournal` and `MemoryJournal` call these before they change
anything, so the two refuse exactly the same requests with the same errors.
"""

from __future__ import annotations

from journal.errors import SequenceGapError


def require_next_sequence(stream: str, first_sequence: int, last_sequence: int) -> None:
    """Refuse a batch that does not start right after the last stored event."""
    if first_sequence != last_sequence + 1:
        raise SequenceGapError(
            f"journal stream {stream}: batch starts at sequence {first_sequence}, "
            f"but the next sequence is {last_sequence + 1}"
        )


def require_snapshot_sequence(
    stream: str, sequence: int, last_sequence: int, latest_snapshot_sequence: int | None
) -> None:
    """Refuse a snapshot of events not yet stored, or older than the latest one."""
    if sequence < 0 or sequence > last_sequence:
        raise ValueError(
            f"journal stream {stream}: snapshot at sequence {sequence} is outside "
            f"the stored events 0..{last_sequence}"
        )
    if latest_snapshot_sequence is not None and sequence < latest_snapshot_sequence:
        raise ValueError(
            f"journal stream {stream}: snapshot at sequence {sequence} is older than "
            f"the latest snapshot at {latest_snapshot_sequence}"
        )


def require_prunable(stream: str, before: int, latest_snapshot_sequence: int | None) -> None:
    """Refuse to drop events that no snapshot covers."""
    limit = (latest_snapshot_sequence or 0) + 1
    if before > limit:
        covered = (
            "no snapshot exists"
            if latest_snapshot_sequence is None
            else f"the latest snapshot covers events up to {latest_snapshot_sequence}"
        )
        raise ValueError(
            f"journal stream {stream}: cannot prune events before {before}: {covered}, "
            f"so pruning may go up to {limit}"
        )
