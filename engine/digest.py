"""A state digest: equal digests mean equal state, for rebuild and recovery checks."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def state_digest(state: Any) -> str:
    """Return a SHA-256 hex digest of plain state values, independent of dict order."""
    encoded = json.dumps(state, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not plain state")
