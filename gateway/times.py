"""Times at the edge: the engine counts microseconds since the epoch (UTC)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def micros(moment: datetime) -> int:
    """Return a moment as microseconds since the epoch; a naive moment is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def micros_or_none(moment: datetime | None) -> int | None:
    return None if moment is None else micros(moment)
