"""Hot state in memory, history on disk: memory per order placed, recovery time, history reads.

Drives the actors directly (no HTTP; real Ray, real LMDB, fsync on, one shard and one book actor
as on 2 cores), with batches of limit orders around a mid that cross often, so most orders fill
and few stay open. Reports, all in one run:
- each actor's anonymous resident memory (RssAnon, not RSS, which counts LMDB's mapped pages)
  after a warm-up and at the end, as bytes per order placed in between;
- the time for the actors to recover to ready on the loaded data directory and on an empty one;
- for the user with the most orders: `list_orders` with each filter and deep offsets, and
  `transactions`, p50 and p99 over repeated queries, with the exact totals.

    .venv/bin/python bench/history_bench.py [--orders 300000] [--warmup 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.client import ServiceClient  # noqa: E402
from actors.config import ServiceConfig  # noqa: E402
from actors.messages import AdjustBalance, PlaceOrder, to_rows  # noqa: E402
from actors.remote import kill_actors, start_ray  # noqa: E402
from bench.machine import cpu_model  # noqa: E402
from bench.processes import status_memory_kib  # noqa: E402
from engine import AssetSpec  # noqa: E402
from engine.numbers import MONEY_UNITS_PER_USD  # noqa: E402

ASSET = "HIST"
HEAVY = "heavy"  # the user whose history the read queries walk


def orders(rng: random.Random, users: list[str], count: int) -> list[PlaceOrder]:
    made = []
    for _ in range(count):
        user = HEAVY if rng.random() < 0.4 else rng.choice(users)
        side = rng.choice(("limit_buy", "limit_sell"))
        # Buys above the mid and sells below it cross at once: most orders fill, the book stays small.
        price = 10_000 + (rng.randint(0, 3) if side == "limit_buy" else -rng.randint(0, 3))
        tif = "ioc" if rng.random() < 0.3 else "gtc"
        made.append(PlaceOrder(user, ASSET, side, tif, False, rng.randint(1, 5), price, None, None))
    return made


async def place(client: ServiceClient, requests: list[PlaceOrder], batch: int) -> None:
    shard = client.shards[0]
    calls = [requests[i:i + batch] for i in range(0, len(requests), batch)]
    pending = iter(calls)

    async def worker():
        for chunk in pending:
            await shard.place_orders.remote(to_rows(chunk))

    await asyncio.gather(*(worker() for _ in range(8)))


async def memory(client: ServiceClient) -> dict[str, int]:
    pids = {"shard": await client.shards[0].pid.remote(), "book": await client.books[0].pid.remote()}
    return {role: status_memory_kib(pid)["RssAnon"] * 1024 for role, pid in pids.items()}


async def start(data_dir: Path, namespace: str) -> tuple[ServiceClient, float]:
    config = ServiceConfig(data_dir=data_dir, namespace=namespace, shard_count=1, book_actor_count=1)
    started = time.perf_counter()
    client = ServiceClient(config)
    await client.wait_ready()
    return client, time.perf_counter() - started


async def stop(client: ServiceClient) -> None:
    await client.flush()
    pids = [await client.shards[0].pid.remote(), await client.books[0].pid.remote(), await client.registry.pid.remote()]
    kill_actors(client.config)
    for pid in pids:  # wait until each process is gone, its journal lock with it
        while os.path.exists(f"/proc/{pid}"):
            await asyncio.sleep(0.05)


async def timed(call, repeats: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = await call()
        times.append(time.perf_counter() - started)
    times.sort()
    return statistics.median(times) * 1e3, times[min(len(times) - 1, int(0.99 * len(times)))] * 1e3, result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=300_000)
    parser.add_argument("--warmup", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--queries", type=int, default=40, help="repeats of each read query")
    parser.add_argument("--recoveries", type=int, default=3, help="starts of each data directory (default 3)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="history-bench-", dir=os.environ.get("BENCH_DIR", "/tmp")))
    loaded, empty = root / "loaded", root / "empty"
    start_ray(root, "history-bench")
    client, _ = await start(loaded, "history-bench-1")
    await client.create_asset(AssetSpec.create(ASSET, "0.01", "1"))
    users = [HEAVY] + [f"user{i}" for i in range(args.users)]
    for username in users:
        await client.create_user(username, f"hash-{username}", 0)
        await client.adjust_balance(AdjustBalance("deposit", username, "USD", 10**9 * MONEY_UNITS_PER_USD))
        await client.adjust_balance(AdjustBalance("deposit", username, ASSET, 10**9))
    rng = random.Random(11)
    await place(client, orders(rng, users, args.warmup), args.batch)
    await client.drain()
    before = await memory(client)
    started = time.perf_counter()
    await place(client, orders(rng, users, args.orders - args.warmup), args.batch)
    await client.drain()
    rate = (args.orders - args.warmup) / (time.perf_counter() - started)
    after = await memory(client)
    await stop(client)

    client, loaded_seconds = await start(loaded, "history-bench-2")
    no = {"order_type": None, "status": None, "asset_id": None, "start": None, "end": None}
    queries = {
        "orders, no filter, offset 0": lambda: client.list_orders(HEAVY, no, 50, 0),
        "orders, no filter, offset 90%": None,
        "orders, status=completed, offset 50%": None,
        "orders, order_type=limit_sell": lambda: client.list_orders(HEAVY, {**no, "order_type": "limit_sell"}, 50, 0),
        "orders, asset_id + status=cancelled": lambda: client.list_orders(
            HEAVY, {**no, "asset_id": ASSET, "status": "cancelled"}, 50, 0),
        "orders, date range (middle third)": None,
        "transactions, offset 0": lambda: client.transactions(
            HEAVY, ASSET, {"transaction_type": None, "start": None, "end": None}, 50, 0),
        "transactions, SELL, offset 50%": None,
    }
    total = (await client.list_orders(HEAVY, no, 1, 0)).total_count
    completed = (await client.list_orders(HEAVY, {**no, "status": "completed"}, 1, 0)).total_count
    fills = (await client.transactions(HEAVY, ASSET, {"transaction_type": "SELL", "start": None, "end": None},
                                       1, 0)).total_count
    oldest = (await client.list_orders(HEAVY, no, 1, total - 1)).items[0].created_at
    newest = (await client.list_orders(HEAVY, no, 1, 0)).items[0].created_at
    third = (newest - oldest) // 3
    queries["orders, no filter, offset 90%"] = lambda: client.list_orders(HEAVY, no, 50, int(total * 0.9))
    queries["orders, status=completed, offset 50%"] = lambda: client.list_orders(
        HEAVY, {**no, "status": "completed"}, 50, completed // 2)
    queries["orders, date range (middle third)"] = lambda: client.list_orders(
        HEAVY, {**no, "start": oldest + third, "end": newest - third}, 50, 0)
    queries["transactions, SELL, offset 50%"] = lambda: client.transactions(
        HEAVY, ASSET, {"transaction_type": "SELL", "start": None, "end": None}, 50, fills // 2)
    reads = {name: await timed(call, args.queries) for name, call in queries.items()}
    await stop(client)
    # More starts of each, alternating, for medians and paired differences: one start is
    # at the mercy of whatever else the machine does at that moment.
    loaded_times, empty_times = [loaded_seconds], []
    for repeat in range(args.recoveries):
        client, seconds = await start(empty, f"history-bench-empty-{repeat}")
        empty_times.append(seconds)
        await stop(client)
        if repeat + 1 < args.recoveries:
            client, seconds = await start(loaded, f"history-bench-loaded-{repeat}")
            loaded_times.append(seconds)
            await stop(client)
    loaded_seconds, empty_seconds = statistics.median(loaded_times), statistics.median(empty_times)
    differences = [loaded - empty for loaded, empty in zip(loaded_times, empty_times)]

    placed = args.orders - args.warmup
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; fsync on; 1 shard, 1 book actor; "
          f"{args.orders} orders in batches of {args.batch} ({len(users)} users, {HEAVY!r} places ~40%)")
    print(f"placing after the warm-up: {rate:.0f} orders/s")
    print("RssAnon after warm-up -> end, per order placed in between:")
    for role in before:
        print(f"  {role:6s} {before[role] / 2**20:8.1f} MiB -> {after[role] / 2**20:8.1f} MiB: "
              f"{(after[role] - before[role]) / placed:7.1f} B/order")
    growth = sum(after.values()) - sum(before.values())
    print(f"  summed: {growth / placed:.1f} B/order (target <= 64)")
    print(f"recovery to ready, medians of {args.recoveries} alternating starts: loaded {loaded_seconds:.2f} s, "
          f"empty {empty_seconds:.2f} s; paired differences "
          f"{', '.join(f'{difference:+.2f}' for difference in differences)} s, "
          f"median {statistics.median(differences):+.2f} s (target <= +1.5 s)")
    print(f"history reads for {HEAVY!r} ({total} orders, {fills} SELL fills), {args.queries} repeats:")
    for name, (p50, p99, page) in reads.items():
        print(f"  {name:40s} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  total_count {page.total_count}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
