"""Ray's own floor for a single order's path: the hops alone, with no work, no journal and no HTTP.

Run: .venv/bin/python bench/ray_floor.py [--calls 2000] [--repeats 3]

A single order crosses four Ray hops: gateway -> shard (hold), shard -> book (match), the book's
answer back to the shard, the shard's answer back to the gateway. Issue 12 asks for a p50 of 5 ms
per sequential order; this measures what those hops cost by themselves on this machine, so the
figure `http_bench.py --phases sequential` gives can be read against it. A local Ray of its own,
started as the service starts one (actors at normal priority, `RAY_worker_niceness=0`), two async
actors created with the service's actor options, an asyncio driver on uvloop as the gateway is.
Shapes, alternated in every repeat, each `--calls` calls one after another:

- `round trip`: driver -> actor -> driver (two hops: the floor of any call to an actor);
- `order shape`: driver -> "shard" -> "book" -> "shard" -> driver, a row of an order's size each way
  (four hops: the floor of one order, before any of its Python, its two commits and HTTP).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.http_report import percentile  # noqa: E402
from bench.machine import cpu_model, load_average  # noqa: E402

# As actors/remote.py creates the service's actors (detached and restartable aside).
ACTOR_OPTIONS = dict(num_cpus=0, max_concurrency=10_000, enable_task_events=False)
# A PlaceOrder row's size: what a single order sends and gets back.
ROW = ["user-0123", "BTC", "limit_buy", "GTC", False, 100, 10_000, None, None, None, None, None]


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    """p50, p90 and p99 in milliseconds."""
    ordered = sorted(samples)
    return tuple(percentile(ordered, share) * 1e3 for share in (0.5, 0.9, 0.99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per shape per repeat (default 2000)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats (default 3)")
    arguments = parser.parse_args()

    os.environ.setdefault("RAY_worker_niceness", "0")  # as actors/remote.start_ray
    import ray
    import uvloop

    ray.init(address="local", num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)

    @ray.remote
    class Book:
        async def submit(self, row: list) -> list:
            return row

    @ray.remote
    class Shard:
        def __init__(self, book) -> None:
            self.book = book

        async def place(self, row: list) -> list:
            return await self.book.submit.remote(row)

        async def echo(self, row: list) -> list:
            return row

    book = Book.options(**ACTOR_OPTIONS).remote()
    shard = Shard.options(**ACTOR_OPTIONS).remote(book)
    shapes = {"round trip (2 hops)": lambda: shard.echo.remote(ROW),
              "order shape (4 hops)": lambda: shard.place.remote(ROW)}

    async def measure(call, count: int) -> list[float]:
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - started)
        return samples

    async def run() -> dict[str, list[tuple[float, float, float]]]:
        for call in shapes.values():
            await measure(call, 200)  # warm-up: workers started, connections made
        results: dict[str, list] = {name: [] for name in shapes}
        for repeat in range(arguments.repeats):
            for name, call in shapes.items():
                figures = percentiles(await measure(call, arguments.calls))
                results[name].append(figures)
                print(f"  [{repeat + 1}] {name:22s} p50 {figures[0]:6.3f} ms  p90 {figures[1]:6.3f} ms  "
                      f"p99 {figures[2]:6.3f} ms", flush=True)
        return results

    print("Ray's floor for a single order's hops: no work, no journal, no HTTP")
    print(f"  cpu: {cpu_model()}, {os.cpu_count()} cores; python {platform.python_version()}; ray {ray.__version__}; "
          f"load average before: {load_average()}")
    print(f"  {arguments.calls} sequential calls per shape, {arguments.repeats} repeats, shapes alternated; "
          "async actors at normal priority; asyncio driver on uvloop")
    uvloop.install()
    results = asyncio.run(run())
    print(f"medians of {arguments.repeats} repeats (load average after: {load_average()})")
    for name, figures in results.items():
        p50, p90, p99 = (statistics.median(values) for values in zip(*figures))
        print(f"  {name:22s} p50 {p50:6.3f} ms  p90 {p90:6.3f} ms  p99 {p99:6.3f} ms")
    ray.shutdown()


if __name__ == "__main__":
    main()
