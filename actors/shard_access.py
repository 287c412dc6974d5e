"""Who may use an account shard's accounts, and how fast: suspensions and per-user rate limits.

A shard sees every order, amend and cancel of its users, from every key and every gateway
process, so it is where the order limit is kept exactly, without a hop of its own: a token
bucket per user (`rate` tokens a second, up to twice that), taken from before anything is
held. Other user requests (reads) take from a second bucket through `admit_read`, one short
call per request, made only while that limit is on. Buckets start full; a full bucket is the
same as none, so buckets idle long enough to be full are dropped and memory follows the
users active in the last seconds, not all users.

A suspended account takes no orders: the registry journals a suspension, then the shard
journals its own `AccountSuspended` (actors/records.py) and cancels what is open.
"""

from __future__ import annotations

import math
import time

RATE_LIMITED, USER_SUSPENDED = "RATE_LIMITED", "USER_SUSPENDED"
_SWEEP_SECONDS = 10.0


class TokenBuckets:
    """One token bucket per key: `rate` a second, `2 × rate` at most, starting full."""

    __slots__ = ("rate", "capacity", "_buckets", "_swept")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = 2 * rate
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, when they were counted]
        self._swept = 0.0  # time.monotonic() of the last sweep

    def take(self, key: str, now: float) -> int | None:
        """Take a token: answer the whole tokens left, or None if there is none to take."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if now - self._swept > _SWEEP_SECONDS:
                self._sweep(now)
            bucket = self._buckets[key] = [self.capacity, now]
        else:
            tokens = bucket[0] + (now - bucket[1]) * self.rate
            bucket[0] = tokens if tokens < self.capacity else self.capacity
            bucket[1] = now
        if bucket[0] < 1:
            return None
        bucket[0] -= 1
        return int(bucket[0])

    def retry_after(self, key: str) -> int:
        """Whole seconds (at least 1) until the key's bucket holds a token again."""
        bucket = self._buckets.get(key)
        missing = 1 - bucket[0] if bucket is not None else 0
        return max(1, math.ceil(missing / self.rate))

    def _sweep(self, now: float) -> None:
        full_after = self.capacity / self.rate
        self._buckets = {key: bucket for key, bucket in self._buckets.items() if now - bucket[1] < full_after}
        self._swept = now

    def __len__(self) -> int:
        return len(self._buckets)


class ShardAccess:
    """A shard's suspended users and rate limits (0: off)."""

    def __init__(self, order_rate: float, read_rate: float) -> None:
        self.suspended: set[str] = set()
        self.orders = TokenBuckets(order_rate) if order_rate > 0 else None
        self.reads = TokenBuckets(read_rate) if read_rate > 0 else None
        self.order_check = None  # None while there is nothing to check: the hot path's test
        self._refresh()

    def set_suspended(self, username: str, suspended: bool) -> None:
        if suspended:
            self.suspended.add(username)
        else:
            self.suspended.discard(username)
        self._refresh()

    def _refresh(self) -> None:
        self.order_check = self._check if (self.suspended or self.orders is not None) else None

    def _check(self, username: str, now: float) -> tuple[str | None, int | None]:
        """(refusal or None, tokens left or None) for one order operation of a user. `now` (a
        `time.monotonic()`): the instant of the call the operation came in, the same for every
        order of a batch, so that a batch is decided at one instant and what it refuses is its
        tail (with a clock read per order, a slow pass refilled a token between two orders and
        placed an order after a refused one)."""
        if username in self.suspended:
            return USER_SUSPENDED, None
        if self.orders is None:
            return None, None
        left = self.orders.take(username, now)
        return (RATE_LIMITED, 0) if left is None else (None, left)

    def admit_read(self, username: str) -> int | None:
        """Take a read token: the tokens left, or None when limited (reads are unlimited: -1)."""
        if self.reads is None:
            return -1
        return self.reads.take(username, time.monotonic())
