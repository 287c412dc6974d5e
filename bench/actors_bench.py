"""Orders per second through the actors, without HTTP, with the durable journal on.

Two ways of calling the account shards, measured in one run on one service:
one order per Ray call, and batches of `--batch` orders per call, each with
`--concurrency` calls in flight. Orders are limit orders around a mid that
cross often, from many users spread over every shard and two assets, so they
hold funds, match, and settle across shards. Prints orders/s (median of the
repeats), per-call latency p50/p99, and the conditions.

    .venv/bin/python bench/actors_bench.py [--orders 100000] [--batch 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.client import ServiceClient  # noqa: E402
from actors.config import ServiceConfig, shard_for  # noqa: E402
from actors.messages import AdjustBalance, PlaceOrder, to_rows  # noqa: E402
from actors.remote import kill_actors, start_ray  # noqa: E402
from engine import AssetSpec  # noqa: E402
from engine.numbers import MONEY_UNITS_PER_USD  # noqa: E402
from bench.machine import cpu_model, cpu_seconds  # noqa: E402

ASSETS = ["AAA", "BBB"]


def make_orders(rng: random.Random, users: list[str], count: int) -> list[PlaceOrder]:
    orders = []
    for _ in range(count):
        side = rng.choice(("limit_buy", "limit_sell"))
        price = 10_000 + rng.randint(-20, 20)
        orders.append(PlaceOrder(rng.choice(users), rng.choice(ASSETS), side, "gtc", False, rng.randint(1, 5), price,
                                 None, None))
    return orders


async def drive(client: ServiceClient, orders_by_shard: list[list[PlaceOrder]], batch: int,
                concurrency: int) -> tuple[float, list[float]]:
    """Send every order, `batch` per call, `concurrency` calls in flight; return seconds and call latencies."""
    calls = []
    for shard, orders in enumerate(orders_by_shard):
        calls.extend((shard, orders[i:i + batch]) for i in range(0, len(orders), batch))
    random.Random(1).shuffle(calls)
    latencies: list[float] = []
    queue = iter(calls)

    async def worker():
        for shard, requests in queue:
            started = time.perf_counter()
            results = await client.shards[shard].place_orders.remote(to_rows(requests))
            latencies.append(time.perf_counter() - started)
            assert len(results) == len(requests)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000, help="orders per batched run")
    parser.add_argument("--single-orders", type=int, default=10_000, help="orders per one-per-call run")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight")
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-sync", action="store_true", help="journal without fsync")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="actors-bench-", dir=os.environ.get("BENCH_DIR", "/tmp")))
    config = ServiceConfig(data_dir=data_dir, namespace="actors-bench", sync=not args.no_sync)
    start_ray(data_dir, config.namespace)
    client = ServiceClient(config)
    await client.wait_ready()
    for asset_id in ASSETS:
        await client.create_asset(AssetSpec.create(asset_id, "0.01", "1"))
    users = [f"user{i}" for i in range(args.users)]
    for username in users:
        await client.create_user(username, f"hash-{username}", 0)
        await client.adjust_balance(AdjustBalance("deposit", username, "USD", 10**9 * MONEY_UNITS_PER_USD))
        for asset_id in ASSETS:
            await client.adjust_balance(AdjustBalance("deposit", username, asset_id, 10**9))

    pids = {"shards": [await shard.pid.remote() for shard in client.shards],
            "books": [await book.pid.remote() for book in client.books],
            "driver": [os.getpid()]}
    rng = random.Random(42)
    figures: dict[str, list] = {"single": [], "batched": []}
    cpu_per_order: dict[str, list] = {"single": [], "batched": []}
    for repeat in range(args.repeats):
        for mode, count, batch in (("single", args.single_orders, 1), ("batched", args.orders, args.batch)):
            orders = make_orders(rng, users, count)
            by_shard: list[list[PlaceOrder]] = [[] for _ in range(config.shard_count)]
            for order in orders:
                by_shard[shard_for(order.username, config.shard_count)].append(order)
            before = {role: sum(cpu_seconds(pid) for pid in group) for role, group in pids.items()}
            seconds, latencies = await drive(client, by_shard, batch, args.concurrency)
            after = {role: sum(cpu_seconds(pid) for pid in group) for role, group in pids.items()}
            cpu_per_order[mode].append({role: (after[role] - before[role]) / count * 1e6 for role in pids})
            figures[mode].append((count / seconds, percentile(latencies, 0.5), percentile(latencies, 0.99)))
            print(f"  repeat {repeat + 1} {mode:8s} {count / seconds:10.0f} orders/s  "
                  f"p50 {percentile(latencies, 0.5) * 1e3:7.2f} ms  p99 {percentile(latencies, 0.99) * 1e3:7.2f} ms")
    report = await client.audit()

    print()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; python {platform.python_version()}")
    print(f"service: {config.shard_count} shards, {config.book_actor_count} book actors, "
          f"journal fsync {'on' if config.sync else 'off'}, {args.users} users, {len(ASSETS)} assets")
    print(f"load: {args.concurrency} calls in flight; single = 1 order per call ({args.single_orders} orders), "
          f"batched = {args.batch} orders per call ({args.orders} orders); {args.repeats} repeats, medians")
    print()
    print(f"{'mode':10s} {'orders/s':>12s} {'p50 per call':>14s} {'p99 per call':>14s}")
    medians = {}
    for mode, rows in figures.items():
        rate = statistics.median(r[0] for r in rows)
        medians[mode] = rate
        print(f"{mode:10s} {rate:12.0f} {statistics.median(r[1] for r in rows) * 1e3:11.2f} ms "
              f"{statistics.median(r[2] for r in rows) * 1e3:11.2f} ms")
    print()
    print("CPU time per order (µs, medians; the driver is the caller, not the service):")
    for mode, rows in cpu_per_order.items():
        parts = ", ".join(f"{role} {statistics.median(r[role] for r in rows):.0f}" for role in pids)
        print(f"  {mode:8s} {parts}")
    print()
    ratio = medians["batched"] / medians["single"]
    print(f"batched / single: {ratio:.1f}x (target >= 10x); batched {medians['batched']:.0f} orders/s "
          f"(target >= 20000): {'MET' if ratio >= 10 and medians['batched'] >= 20_000 else 'NOT MET'}")
    print(f"invariants after the run: {'hold' if not report['problems'] else report['problems'][:5]}")
    kill_actors(config)


if __name__ == "__main__":
    asyncio.run(main())
