"""How long a snapshot stops an actor: taken in process against taken by a forked child, one run.

Run: .venv/bin/python bench/snapshot_stall.py [--orders 300000] [--repeats 5]

A `JournaledState` (fsync on, a temporary directory) owns an engine `Accounts` with N open
orders, as a shard after heavy trading does. A ticker on the same event loop wakes every
millisecond, records how late it woke and journals one event (fsync), as a trickle of orders
would; each repeat takes one snapshot and reports the longest wake-up delay while it is taken
(the stall of every command the actor would have served), the longest append (what an order's
acknowledgement waited), the whole snapshot's time, and its size. The baseline is the same snapshot taken in
process (`fork_above_bytes` out of reach): the way every snapshot was taken before.
Issue 11's target: a snapshot stalls the actor's commands for no more than a few ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors.journaled import JournaledState  # noqa: E402
from bench.machine import cpu_model, load_average  # noqa: E402
from engine.accounts import Accounts  # noqa: E402
from engine.orders import OrderRecord, OrderStatus, OrderType, TimeInForce  # noqa: E402


def open_orders(count: int) -> Accounts:
    accounts = Accounts()
    for order_id in range(1, count + 1):
        order = OrderRecord(order_id, f"user{order_id % 200}", "BTC", OrderType.LIMIT_BUY, TimeInForce.GTC,
                            False, 100, 5_000 + order_id % 100, None, None, 1_700_000_000_000_000 + order_id)
        order.status = OrderStatus.CONFIRMED
        accounts.orders[order_id] = order
    return accounts


async def one_snapshot(state: JournaledState) -> tuple[float, float, float]:
    """Take one snapshot while an appender journals an event every millisecond; return the
    longest loop stall, the longest append (submit to durable) and the whole snapshot, in seconds."""
    stall = append = 0.0
    stop = False

    async def appender() -> None:
        nonlocal stall, append
        while not stop:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            woke = time.perf_counter()
            stall = max(stall, woke - before - 0.001)
            await state.append([{"event": "tick"}])
            append = max(append, time.perf_counter() - woke)

    ticking = asyncio.create_task(appender())
    await asyncio.sleep(0.05)
    stall = append = 0.0
    started = time.perf_counter()
    state._start_snapshot()
    await state._snapshot_task
    whole = time.perf_counter() - started
    stop = True
    await ticking
    return stall, append, whole


async def measure(directory: Path, accounts: Accounts, fork: bool, repeats: int) -> tuple[list, list, list, int]:
    state = JournaledState(directory, sync=True, snapshot=accounts.to_state, snapshot_every=1 << 62,
                           snapshot_seconds=1e12, fork_above_bytes=-1 if fork else 1 << 62)
    stalls, appends, wholes = [], [], []
    try:
        for _ in range(repeats):
            stall, append, whole = await one_snapshot(state)
            stalls.append(stall)
            appends.append(append)
            wholes.append(whole)
        size = state._snapshot_bytes
    finally:
        state.close()
    return stalls, appends, wholes, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300_000, help="open orders in the state (default 300,000)")
    parser.add_argument("--repeats", type=int, default=5, help="snapshots per way (default 5)")
    arguments = parser.parse_args()
    print("Snapshot stall: in process (before) against a forked child (now), one run")
    print(f"  machine: {cpu_model()}; load average {load_average()}; fsync on; "
          f"{arguments.orders:,} open orders; {arguments.repeats} snapshots each way")
    accounts = open_orders(arguments.orders)
    results = {}
    with tempfile.TemporaryDirectory() as root:
        for fork in (False, True):
            results[fork] = asyncio.run(measure(Path(root) / ("forked" if fork else "in-process"), accounts, fork,
                                                arguments.repeats))
    worst = {}
    for fork, (stalls, appends, wholes, size) in results.items():
        name = "forked child" if fork else "in process  "
        # What a command waited at worst: a stalled loop delays the next append's start, or its end.
        worst[fork] = statistics.median(map(max, stalls, appends))
        print(f"  {name}: worst wait of a command median {worst[fork] * 1e3:6.1f} ms "
              f"(loop stall max {max(stalls) * 1e3:.1f} ms, append max {max(appends) * 1e3:.1f} ms); "
              f"whole snapshot median {statistics.median(wholes) * 1e3:5.0f} ms; {size / 1e6:.1f} MB")
    print(f"  worst wait, in process / forked = {worst[False] / max(worst[True], 1e-6):.0f}x")

if __name__ == "__main__":
    main()
