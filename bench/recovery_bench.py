"""Recovery time of a data directory whose journals hold 1,000,000 events written by the service's actors.

    .venv/bin/python bench/recovery_bench.py [--events 1000000] [--runs 3] [--data DIR] [--keep]

1. Produce the data (skipped with `--data DIR` of an earlier run): in a child process, start a local
   Ray and the service's actors on a new data dir (fsync on, default snapshot setting), create
   users and two assets, and drive the account shards directly through `actors.client` with batches
   of limit orders around a mid (they rest, cross and settle across shards), some IOC and market
   orders, and cancels of resting orders, until the journals hold at least `--events` events.
   Events are counted by reading every journal (`bench/journal_counts.py` says what counts: a book
   record holds the events of a whole batch; a shard's settlement record counts once).
   Snapshots: the default, one per stream every 1,000,000 records; no stream gets there, so every
   figure below is a full replay from sequence 1 (the report shows that no snapshot exists).
2. Offline: `order-service verify --data-dir` (new process, imports, replay of every stream one after
   another, recovery finished in memory, invariant checks), `--runs` times; and, apart, the replay
   alone (`actors.offline.rebuild` timed inside one process, after its imports).
3. The running service's cold recovery: start `order-service serve` on the data (local Ray, fsync on)
   and time from the process start to the first 200 of `GET /health/ready` (polled every 0.2 s),
   `--runs` times, alternating with the same on an empty data dir. The gateway's log and
   `/health/ready` split each start into: process start and imports; Ray start-up (`ray.init`, app
   start); and actor recovery (actor processes spawned, journals replayed, shards reconciled with
   books, as the gateway's `recovery_seconds`). Actor recovery on the 1M data minus the same on an
   empty dir is the part due to the journal.

Prints medians with the conditions. Every service start adds a few `fence` records (shards
reconciling with books) to the data; that is all it changes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.journal_counts import count_events  # noqa: E402
from bench.load_setup import ServiceProcess, conditions  # noqa: E402
from bench.machine import load_average  # noqa: E402
from bench.placement import assets_on_distinct_books  # noqa: E402
from bench.revision import source_revision  # noqa: E402
from bench.service_memory import ServiceProcesses  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "recovery"
ASSETS = assets_on_distinct_books("REC", 2)  # one per book actor, so that both books replay
MID_TICKS = 10_000
ACTORS = ("shard-", "book-", "registry")
FIRST_ROUND_EVENTS_PER_ORDER = 4.0  # a guess for the first round; later rounds use what was measured


# ---- producing the data (child process) ------------------------------------------------------------

def random_request(rng: random.Random, users: list[str]):
    """A market order now and then, limit orders around the mid otherwise (some ioc)."""
    from actors.messages import PlaceOrder

    user, asset_id, draw = rng.choice(users), rng.choice(ASSETS), rng.random()
    if draw < 0.02:
        return PlaceOrder(user, asset_id, rng.choice(("market_buy", "market_sell")), "ioc", False,
                          rng.randint(1, 5), None, None, None)
    side = rng.choice(("limit_buy", "limit_sell"))
    return PlaceOrder(user, asset_id, side, "ioc" if draw < 0.12 else "gtc", False, rng.randint(1, 10),
                      MID_TICKS + rng.randint(-25, 25), None, None)


async def produce(data_dir: Path, orders: int, users: int, batch: int, concurrency: int, seed: int) -> dict:
    """Place `orders` orders (and cancel some) through the actors; stop them; return what was done."""
    from actors.client import ServiceClient
    from actors.config import ServiceConfig, shard_for
    from actors.messages import AdjustBalance, CancelOrder, OrderOutcome, to_rows
    from actors.remote import kill_actors, start_ray
    from engine import AssetSpec
    from engine.numbers import MONEY_UNITS_PER_USD

    config = ServiceConfig(data_dir=data_dir, namespace=f"recovery-bench-{os.getpid()}", sync=True)
    start_ray(data_dir, config.namespace)
    client = ServiceClient(config)
    await client.wait_ready()
    names = [f"rec{index:05d}" for index in range(users)]
    if not await client.user_exists(names[0]):
        for asset_id in ASSETS:
            await client.create_asset(AssetSpec.create(asset_id, "0.01", "1"))
        for username in names:
            await client.create_user(username, f"hash-{username}", 0)
            await client.adjust_balance(AdjustBalance("deposit", username, "USD", 10**9 * MONEY_UNITS_PER_USD))
            for asset_id in ASSETS:
                await client.adjust_balance(AdjustBalance("deposit", username, asset_id, 10**9))
    rng = random.Random(seed)
    by_shard: list[list] = [[] for _ in range(config.shard_count)]
    for _ in range(orders):
        request = random_request(rng, names)
        by_shard[shard_for(request.username, config.shard_count)].append(request)
    calls = [(shard, requests[i:i + batch]) for shard, requests in enumerate(by_shard)
             for i in range(0, len(requests), batch)]
    rng.shuffle(calls)
    pending = iter(calls)
    tally = {"placed": 0, "accepted": 0, "cancel_requests": 0, "cancelled": 0}

    async def worker() -> None:
        for shard, requests in pending:
            results = OrderOutcome.from_rows(await client.shards[shard].place_orders.remote(to_rows(requests)))
            tally["placed"] += len(requests)
            resting = []
            for outcome in results:
                if outcome.ok:
                    tally["accepted"] += 1
                    if outcome.order.status in ("confirmed", "processing"):
                        resting.append(CancelOrder(outcome.order.username, outcome.order.order_id))
            # Cancel about a third of what rests, as traders do.
            cancels = [entry for entry in resting if rng.random() < 0.33]
            if cancels:
                answers = OrderOutcome.from_rows(await client.shards[shard].cancel_orders.remote(to_rows(cancels)))
                tally["cancel_requests"] += len(cancels)
                tally["cancelled"] += sum(1 for answer in answers if answer.ok)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    await client.flush()
    report = await client.audit()
    kill_actors(config)
    import ray

    ray.shutdown()
    return {**tally, "seconds": seconds, "orders_per_s": tally["placed"] / seconds,
            "shards": config.shard_count, "book_actors": config.book_actor_count,
            "audit_problems": report["problems"][:5]}


def produce_data(data_dir: Path, target_events: int, arguments) -> tuple[dict, list[dict]]:
    """Run producing rounds in child processes until the journals hold `target_events` events."""
    rounds = []
    counts = count_events(data_dir) if (data_dir / "layout.json").exists() else {"events": 0}
    per_order = FIRST_ROUND_EVENTS_PER_ORDER
    while counts["events"] < target_events:
        missing = target_events - counts["events"]
        orders = max(10_000, int(missing / per_order * 1.03))
        spec = {"data_dir": str(data_dir), "orders": orders, "users": arguments.users, "batch": arguments.batch,
                "concurrency": arguments.concurrency, "seed": len(rounds) + 1}
        print(f"  producing: {orders} orders through the actors ({counts['events']} events so far)", flush=True)
        child = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--produce", json.dumps(spec)],
                               capture_output=True, text=True)
        if child.returncode != 0:
            raise RuntimeError(f"producing failed:\n{child.stderr[-3000:]}")
        outcome = json.loads(child.stdout.strip().splitlines()[-1])
        before = counts["events"]
        counts = count_events(data_dir)
        outcome["events_added"] = counts["events"] - before
        per_order = max(1.0, outcome["events_added"] / max(outcome["placed"], 1))
        print(f"  produced: {outcome['placed']} orders in {outcome['seconds']:.1f} s "
              f"({outcome['orders_per_s']:.0f}/s), {outcome['cancelled']} cancelled, "
              f"+{outcome['events_added']} events", flush=True)
        rounds.append(outcome)
    return counts, rounds


# ---- measuring ------------------------------------------------------------------------------------

def time_verify(data_dir: Path) -> dict:
    command = [str(Path(sys.executable).parent / "order-service"), "verify", "--data-dir", str(data_dir)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    verdict = (result.stderr.strip().splitlines() or [""])[-1]
    if result.returncode != 0:
        raise RuntimeError(f"verify failed ({result.returncode}): {verdict}")
    return {"seconds": seconds, "verdict": verdict, "report": json.loads(result.stdout)}


def time_rebuild(data_dir: Path) -> dict:
    """In a fresh process: imports, then `actors.offline.rebuild` alone (every stream's replay)."""
    child = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--rebuild", str(data_dir)],
                           capture_output=True, text=True)
    if child.returncode != 0:
        raise RuntimeError(f"rebuild failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def rebuild_main(data_dir: Path) -> None:
    started = time.perf_counter()
    from actors.offline import rebuild

    imported = time.perf_counter()
    service = rebuild(data_dir)
    rebuilt = time.perf_counter()
    service.close()
    print(json.dumps({"imports_s": imported - started, "rebuild_s": rebuilt - imported}))


def _log_time(line: str) -> float | None:
    """The wall-clock time of a gateway log line ('2026-11-25 02:15:24,034 INFO ...'), or None."""
    try:
        return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    except ValueError:
        return None


def cold_start(root: Path) -> dict:
    """Start the service on `root/data`, time it to ready, split the time, stop it."""
    import httpx

    service = ServiceProcess(root, sync=True)
    launched = time.time()
    try:
        to_ready = service.start(deadline=600)
        with httpx.Client(base_url=service.base_url, timeout=10) as client:
            ready = client.get("/health/ready").json()
            assets = client.get("/api/v1/assets").json()["data"]
        memory = ServiceProcesses(service.data_dir, service.process.pid).sample()
    finally:
        stop_started = time.monotonic()
        stop_code = service.stop()
        stop_seconds = time.monotonic() - stop_started
    if stop_code != 0:
        raise RuntimeError(f"the service stopped with {stop_code}:\n{service.log_tail()}")
    ray_begins = None
    for line in service.log_path.read_text(errors="replace").splitlines():
        if "starting a local Ray" in line:
            ray_begins = _log_time(line)
    recovery = ready["recovery_seconds"]
    imports = (ray_begins - launched) if ray_begins else float("nan")
    return {"to_ready_s": to_ready, "imports_s": imports, "ray_start_s": to_ready - imports - recovery,
            "actor_recovery_s": recovery, "stop_s": stop_seconds, "assets": len(assets),
            "actor_rss_mib": sum(entry["VmRSS"] for role, entry in memory.items() if role.startswith(ACTORS)) / 1024,
            "actor_anon_mib": sum(entry["RssAnon"] for role, entry in memory.items()
                                  if role.startswith(ACTORS)) / 1024,
            "service_rss_mib": sum(entry["VmRSS"] for entry in memory.values()) / 1024}


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def spread(runs: list[dict], key: str) -> str:
    values = [run[key] for run in runs]
    return f"{statistics.median(values):6.2f} s  (runs: {', '.join(f'{value:.2f}' for value in values)})"


def main() -> int:
    if "--produce" in sys.argv:
        spec = json.loads(sys.argv[sys.argv.index("--produce") + 1])
        outcome = asyncio.run(produce(Path(spec["data_dir"]), spec["orders"], spec["users"], spec["batch"],
                                      spec["concurrency"], spec["seed"]))
        print(json.dumps(outcome))
        return 0
    if "--rebuild" in sys.argv:
        rebuild_main(Path(sys.argv[sys.argv.index("--rebuild") + 1]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="events the journals must hold")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (medians printed)")
    parser.add_argument("--data", type=Path, default=None,
                        help="a data dir made by an earlier run (its service must be stopped); default: make one")
    parser.add_argument("--users", type=int, default=1000, help="users the orders come from (default 1000)")
    parser.add_argument("--batch", type=int, default=100, help="orders per call to a shard (default 100)")
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight while producing (default 16)")
    parser.add_argument("--keep", action="store_true", help="keep the data dir made by this run")
    arguments = parser.parse_args()

    workspace = Path(tempfile.mkdtemp(prefix="recovery-bench-", dir=os.environ.get("BENCH_DIR", "/tmp")))
    root = workspace / "full"
    data_dir = arguments.data.resolve() if arguments.data else root / "data"
    if arguments.data:
        root.mkdir(parents=True)
        (root / "data").symlink_to(data_dir)
    load_before = load_average()
    revision = source_revision()
    print(f"recovery bench in {workspace}; data {data_dir}", flush=True)
    try:
        started = time.perf_counter()
        counts, rounds = produce_data(data_dir, arguments.events, arguments)
        produce_seconds = time.perf_counter() - started
        size = sum(path.stat().st_size for path in data_dir.rglob("data.mdb"))

        verify_runs, rebuild_runs, full_runs, empty_runs = [], [], [], []
        for run in range(arguments.runs):
            print(f"  run {run + 1}/{arguments.runs}: verify, rebuild, cold start on the data, on an empty dir",
                  flush=True)
            verify_runs.append(time_verify(data_dir))
            rebuild_runs.append(time_rebuild(data_dir))
            full_runs.append(cold_start(root))
            empty = workspace / f"empty-{run}"
            empty_runs.append(cold_start(empty))
            shutil.rmtree(empty, ignore_errors=True)
        final = time_verify(data_dir)
    finally:
        if arguments.data or not arguments.keep:  # with --data, the workspace holds only a link to it
            shutil.rmtree(workspace, ignore_errors=True)

    machine = conditions()
    streams = counts["streams"]
    print(f"\nrecovery: {machine['cpu']}, {machine['cores']} cores, python {machine['python']}, kernel "
          f"{machine['kernel']}; load average before {load_before}, after {load_average()} "
          f"(other jobs share this machine)")
    print(f"source: {revision}")
    print(f"data: {counts['events']} events in {counts['records']} journal records over {len(streams)} streams "
          f"({size / 2**20:.0f} MiB of LMDB files); {counts['applied_on_replay']} events applied on replay "
          f"(settlement records carry copies of book events)")
    print("  " + ", ".join(f"{entry['stream']} {entry['events']} events / {entry['records']} records"
                           for entry in streams))
    print("  by kind: " + ", ".join(f"{kind} {count}" for kind, count in counts["by_kind"].items()))
    print(f"  snapshots: {counts['snapshots'] or 'none (default setting: one per 1,000,000 records of a stream)'}"
          f"; journal fsync on while producing")
    if rounds:
        placed = sum(r["placed"] for r in rounds)
        print(f"  produced in {produce_seconds:.0f} s: {placed} orders through the actors "
              f"({sum(r['accepted'] for r in rounds)} accepted, {sum(r['cancelled'] for r in rounds)} cancelled), "
              f"batches of {arguments.batch}, {arguments.concurrency} calls in flight, {arguments.users} users, "
              f"{len(ASSETS)} assets, {rounds[0]['shards']} shards, {rounds[0]['book_actors']} book actors")
    data_label = f"{counts['events'] / 1e6:.2f}M events"
    rate = counts["applied_on_replay"] / median(rebuild_runs, "rebuild_s")
    rows = [
        ("offline `order-service verify` (process, imports, replay, checks)", spread(verify_runs, "seconds")),
        ("  of which the replay of every stream (`rebuild`, one process)", spread(rebuild_runs, "rebuild_s")),
        (f"  = {rate:,.0f} events applied/s, {counts['records'] / median(rebuild_runs, 'rebuild_s'):,.0f} "
         "records/s", ""),
        (f"service cold start to /health/ready on the {data_label}", spread(full_runs, "to_ready_s")),
        ("  process start and imports", spread(full_runs, "imports_s")),
        ("  Ray start-up and app start", spread(full_runs, "ray_start_s")),
        ("  actor recovery (spawn, replay, reconcile with books)", spread(full_runs, "actor_recovery_s")),
        ("service cold start to /health/ready on an empty data dir", spread(empty_runs, "to_ready_s")),
        ("  process start and imports", spread(empty_runs, "imports_s")),
        ("  Ray start-up and app start", spread(empty_runs, "ray_start_s")),
        ("  actor recovery (spawn, nothing to replay)", spread(empty_runs, "actor_recovery_s")),
        ("the journal's share: actor recovery, data minus empty",
         f"{median(full_runs, 'actor_recovery_s') - median(empty_runs, 'actor_recovery_s'):6.2f} s"),
        (f"stop (SIGTERM to exit) with the {data_label}", spread(full_runs, "stop_s")),
    ]
    print(f"\nmedians of {arguments.runs} runs:")
    for label, value in rows:
        print(f"  {label:<68} {value}")
    print(f"  memory once ready: actors {median(full_runs, 'actor_rss_mib'):.0f} MiB RSS, "
          f"{median(full_runs, 'actor_anon_mib'):.0f} MiB of it anonymous (empty dir: "
          f"{median(empty_runs, 'actor_rss_mib'):.0f} and {median(empty_runs, 'actor_anon_mib'):.0f}); "
          f"every service process {median(full_runs, 'service_rss_mib'):.0f} MiB RSS "
          f"(empty dir: {median(empty_runs, 'service_rss_mib'):.0f})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    output = RESULTS / f"recovery-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    output.write_text(json.dumps({
        "conditions": {**machine, "load_before": load_before, "revision": revision, "events_target": arguments.events, "sync": True,
                       "snapshots": counts["snapshots"]},
        "journal": counts, "produce_rounds": rounds, "verify_runs": [
            {key: value for key, value in run.items() if key != "report"} for run in verify_runs],
        "rebuild_runs": rebuild_runs, "cold_start_runs": full_runs, "empty_start_runs": empty_runs,
        "final_verify": final["verdict"]}, indent=2))
    print(f"  data after every run: {final['verdict']}")
    print(f"  written to {output}")
    if arguments.keep and not arguments.data:
        print(f"kept {data_dir} (pass --data {data_dir} to measure it again)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
