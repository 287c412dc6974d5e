"""Seeded, reproducible order stream for the engine benchmark.

`generate(count, seed, users)` returns a list of plain tuples, the same list
for the same arguments on every Python version (only `random.Random` methods
whose output is stable across versions are used: `random`, `randrange`,
`randint`, `expovariate`):

    ("L", order_id, user, side, price, quantity)   limit, good till cancelled
    ("M", order_id, user, side, quantity)          market, immediate or cancel
    ("C", order_id)                                cancel of an earlier limit

`side` is 0 for buy and 1 for sell, `price` integer ticks, `quantity` integer
lots (1..100), `user` an int in 1..users. Order ids are 1, 2, 3, ... in the
order the limits and market orders appear (a cancel takes no id of its own),
so an engine that numbers orders itself in arrival order agrees with them.

The shape of the flow:

- a mid price starts at `MID` ticks and drifts slowly (a step of one tick on
  about one message in a hundred, pulled gently back towards `MID`);
- passive limits rest one tick or more away from the mid, most of them within
  a few ticks of it and all of them within `DEPTH` ticks, so the book has
  depth; a share `CROSS_SHARE` of the limits is priced through the mid by up to
  `CROSS_TICKS` and takes liquidity, and the drift makes some of the rest
  cross too;
- cancels pick, uniformly, a limit that the generator placed and has not
  cancelled yet; some of those have filled meanwhile, so a cancel may find
  nothing to cancel, which every engine treats as a no-op;
- market orders come from random users for 1..100 lots.

The generator knows nothing of any engine's state: it does not avoid
self-trades, so engines with self-trade prevention and engines without it
can trade different volumes on the same stream (the harness reports both).
"""

from __future__ import annotations

import random
from collections import Counter

MID = 10_000  # starting mid price, ticks
DEPTH = 50  # passive limits rest at most this many ticks from the mid
CROSS_TICKS = 5  # crossing limits go at most this far through the mid
CANCEL_SHARE = 0.25
MARKET_SHARE = 0.06  # of all messages; the rest (about 0.69) are limits
CROSS_SHARE = 0.15  # of the limits
DRIFT_RATE = 0.01  # chance per message that the mid moves one tick
RECENT_CANCEL_SHARE = 0.7  # of the cancels: aimed at one of the newest live limits
RECENT_CANCEL_RATE = 1 / 50  # how far back from the newest: exponential, mean 50

BUY, SELL = 0, 1


def generate(count: int, seed: int = 42, users: int = 1000) -> list[tuple]:
    """Return `count` messages (see the module docstring). Deterministic in its arguments."""
    if count < 0:
        raise ValueError("count must be >= 0")
    if users < 1:
        raise ValueError("users must be >= 1")
    rng = random.Random(seed)
    rand = rng.random
    randint = rng.randint
    randrange = rng.randrange
    expo = rng.expovariate
    out: list[tuple] = []
    append = out.append
    live: list[int] = []  # ids of limits placed and not yet cancelled by the stream
    next_id = 1
    mid = MID
    cancel_below = CANCEL_SHARE
    market_below = CANCEL_SHARE + MARKET_SHARE
    for _ in range(count):
        if rand() < DRIFT_RATE:
            # Random walk with a weak pull back to MID: P(up) = 0.5 - distance/2000.
            p_up = 0.5 - (mid - MID) / 2000.0
            mid += 1 if rand() < p_up else -1
        roll = rand()
        if roll < cancel_below and live:
            size = len(live)
            if rand() < RECENT_CANCEL_SHARE:
                # Most cancels hit a recent order (the newest ids sit at the end of `live`).
                back = int(expo(RECENT_CANCEL_RATE))
                j = size - 1 - back if back < size else randrange(size)
            else:
                j = randrange(size)
            oid = live[j]
            live[j] = live[-1]
            live.pop()
            append(("C", oid))
            continue
        side = BUY if rand() < 0.5 else SELL
        user = randint(1, users)
        qty = randint(1, 100)
        oid = next_id
        next_id += 1
        if cancel_below <= roll < market_below:
            append(("M", oid, user, side, qty))
            continue
        if rand() < CROSS_SHARE:
            through = randint(0, CROSS_TICKS)
            price = mid + through if side == BUY else mid - through
        else:
            # Mostly near the touch (mean ~8 ticks out), never beyond DEPTH.
            offset = int(expo(0.125))
            if offset >= DEPTH:
                offset = randint(0, DEPTH - 1)
            price = mid - 1 - offset if side == BUY else mid + 1 + offset
        append(("L", oid, user, side, price, qty))
        live.append(oid)
    return out


def mix(stream: list[tuple]) -> dict[str, int]:
    """Counts of each message kind: {"L": .., "M": .., "C": ..} (and "S", "A" when there are any)."""
    counts = Counter(msg[0] for msg in stream)
    return {kind: counts.get(kind, 0) for kind in ("L", "M", "C", "S", "A") if kind in "LMC" or counts.get(kind)}


STOP_ID_BASE = 10**12  # stops take ids of their own, apart from the plain stream's 1, 2, 3, ...
STOP_DISTANCE = 12  # stops wait at most this many ticks from the last limit price
AMEND_RECENT_RATE = 1 / 30  # amends pick one of the newest limits: exponential, mean 30 back


def generate_with_stops(count: int, seed: int = 42, users: int = 1000, stop_share: float = 0.05,
                        amend_share: float = 0.05) -> list[tuple]:
    """The plain stream of `generate` with stops and amends mixed in, `count` messages in all:

        ("S", order_id, user, side, stop_kind, stop_price, price, quantity)  a stop; price None:
                                                                            a stop market sell (ioc)
        ("A", order_id, owner, reduced_by, price)                           an amend of an earlier
                                                                            limit; price None: fewer lots only

    A stop waits 1..STOP_DISTANCE ticks from the last limit price in the direction that does not
    trigger it yet (a stop-loss sell below, a take-profit sell above, ...), so the drift and the
    crossing limits trigger many of them, some in cascades. An amend aims at one of the newest
    limits (it may have filled or been cancelled: the book then refuses it): half move it by a
    few ticks, half take a few lots off. Deterministic in its arguments."""
    plain = generate(count - int(count * (stop_share + amend_share)), seed, users)
    rng = random.Random(seed + 1)
    rand, randint, expo = rng.random, rng.randint, rng.expovariate
    out: list[tuple] = []
    limits: list[tuple] = []  # the limits so far: (order_id, user, price)
    last_price = MID
    next_stop = STOP_ID_BASE
    extra_share = stop_share + amend_share
    stop_below = stop_share / extra_share if extra_share else 1.0
    plain_iter = iter(plain)
    for message in plain_iter:
        while len(out) < count and rand() < extra_share:
            if rand() < stop_below:
                side = BUY if rand() < 0.5 else SELL
                kind = "stop_loss" if rand() < 0.5 else "take_profit"
                falls = (side == SELL) == (kind == "stop_loss")  # triggers on a falling price
                distance = randint(1, STOP_DISTANCE)
                stop_price = last_price - distance if falls else last_price + distance
                price = None if side == SELL and rand() < 0.3 else (
                    stop_price + randint(0, 3) if side == BUY else stop_price - randint(0, 3))
                next_stop += 1
                out.append(("S", next_stop, randint(1, users), side, kind, stop_price, price, randint(1, 100)))
            elif limits:
                back = int(expo(AMEND_RECENT_RATE))
                order_id, user, price = limits[-1 - back] if back < len(limits) else limits[0]
                if rand() < 0.5:
                    out.append(("A", order_id, user, 0, price + randint(1, 3) * (1 if rand() < 0.5 else -1)))
                else:
                    out.append(("A", order_id, user, randint(1, 10), None))
        out.append(message)
        if message[0] == "L":
            limits.append((message[1], message[2], message[4]))
            last_price = message[4]
            if len(limits) > 4096:
                del limits[:2048]
        if len(out) >= count:
            break
    return out[:count]


if __name__ == "__main__":  # quick look: python bench/stream.py [count] [seed]
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    s = int(sys.argv[2]) if len(sys.argv) > 2 else 42
    msgs = generate(n, s)
    for m in msgs[:20]:
        print(m)
    print(mix(msgs))
