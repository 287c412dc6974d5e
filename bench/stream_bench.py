"""Fan-out without harm: the single-order path with no stream subscribers against 500, paired in one run.

One run starts the real service (`order-service serve`, temp data dir, fsync on, its own local Ray), creates
`--users` funded users and `--assets` assets, and then, `--repeats` times, measures the single-order closed
loop of `http_bench.py` (64 keep-alive connections, the same orders and the same load generator helpers from
`http_load.py`) in two conditions, one right after the other, their order swapped on every other repeat:

  none   no WebSocket connected;
  subs   `--subscribers` WebSockets connected (default 500), each watching `book` and `trades` of one asset
         (round robin over the traded assets), `--slow` of them (default 5) never reading: they hold a
         4 KiB receive buffer and a one-frame client queue, so their server-side queue fills and the
         server should close them with 1013 while the others keep receiving.

The subscribers run in `--subscriber-processes` processes of their own (asyncio + uvloop + the `websockets`
client), apart from the HTTP generator's process; all connect and are subscribed (answers and book snapshot
received) before the generator starts, and leave after it stops.

Figures: req/s and latency percentiles of each condition, per repeat and as medians, the ratio subs/none
(target: within 10%), the CPU each kind of process used in the measured window, how many sockets were
closed with 1013 (the never-reading ones and, separately, any reading one), and the delay from a trade's
acknowledgement to its frame: for orders of the generator that filled on arrival (taker orders), from the
moment the generator had the HTTP answer to the moment each reading subscriber of that asset had the
`trades` frame of each of the order's taker fills (matched by trade id, found afterwards through
`GET /api/v1/transactions` of a sample of the users). Both clocks are the machine's CLOCK_MONOTONIC.

    .venv/bin/python bench/stream_bench.py [--repeats 3] [--duration 8] [--warmup 2] [--subscribers 500]
                                           [--slow 5] [--subscriber-processes 2] [--assets 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import http_load  # noqa: E402
from bench.http_load import _build_requests, _connect, _Tally  # noqa: E402
from bench.http_measure import CpuMeter  # noqa: E402
from bench.http_report import NOT_SERVICE, fmt_row, percentile, summarize  # noqa: E402
from bench.load_setup import MID, ServiceProcess, conditions, create_population  # noqa: E402
from bench.machine import load_average  # noqa: E402
from bench.stream_subscribers import SLOW_RECEIVE_BUFFER, Subscribers  # noqa: E402

THIS = Path(__file__).resolve()
NOT_SERVER = NOT_SERVICE | {"subscribers"}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per phase (default 8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="pairs of phases (default 3)")
    parser.add_argument("--connections", type=int, default=64, help="HTTP keep-alive connections (default 64)")
    parser.add_argument("--users", type=int, default=200, help="funded users (default 200)")
    parser.add_argument("--assets", type=int, default=2, help="assets traded and watched (default 2)")
    parser.add_argument("--market-share", type=float, default=0.1, help="share of market orders (default 0.1)")
    parser.add_argument("--subscribers", type=int, default=500, help="WebSockets in the subs phase (default 500)")
    parser.add_argument("--slow", type=int, default=5, help="of them never reading (default 5)")
    parser.add_argument("--subscriber-processes", type=int, default=2,
                        help="processes the subscribers are spread over (default 2)")
    parser.add_argument("--delay-users", type=int, default=40,
                        help="users whose taker orders' trades are looked up for the delay (default 40)")
    parser.add_argument("--no-sync", action="store_true", help="run the service with fsync off (default: on)")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (logs, data)")
    return parser.parse_args()


# ---- the HTTP generator: http_load's closed loop, also noting the taker orders' acknowledgements ----------

async def _generate(spec: dict) -> dict:
    """`http_load._generate`'s closed loop (same requests, same connections) that also keeps, for every
    measured order that filled on arrival, [time the answer arrived, order_id, username, asset_id,
    filled_quantity]. Both conditions run this same code, so the parsing costs them alike."""
    import orjson

    loop = asyncio.get_running_loop()
    requests = _build_requests(spec)
    host, port = spec["host"], spec["port"]
    connections = [await _connect(loop, host, port) for _ in range(spec["connections"])]
    tally = _Tally("single")
    acks: list[list] = []
    clock = time.perf_counter
    begin = clock() + 0.05
    measure_from = begin + spec["warmup"]
    measure_to = measure_from + spec["duration"]
    sys.stdout.write(f"WINDOW {measure_from} {measure_to}\n")
    sys.stdout.flush()
    start = random.Random(spec["seed"] + 1)
    counters = [start.randrange(len(pool)) for pool in requests]

    def next_request(index: int) -> bytes:
        pool = index % len(requests)
        counters[pool] += 1
        return requests[pool][counters[pool] % len(requests[pool])]

    async def worker(index: int) -> None:
        while True:
            started = clock()
            if started >= measure_to:
                return
            connection = connections[index]
            try:
                if connection.closed:
                    connection = connections[index] = await _connect(loop, host, port)
                status, body = await connection.request(next_request(index))
            except Exception:
                if started >= measure_from:
                    tally.errors += 1
                connections[index].closed = True
                await asyncio.sleep(0.01)
                continue
            finished = clock()
            if started >= measure_from and finished <= measure_to:
                tally.record(finished - started, status, body)
                if status == 201:
                    data = orjson.loads(body)["data"]
                    if data["filled_quantity"] not in ("0", "0.00", "0.0"):
                        acks.append([finished, data["order_id"], data["username"], data["asset_id"],
                                     data["filled_quantity"]])

    cpu_before = time.process_time()
    workers = [loop.create_task(worker(index)) for index in range(len(connections))]
    _, pending = await asyncio.wait(workers, timeout=spec["warmup"] + spec["duration"] + spec["timeout"] + 5)
    for task in pending:
        task.cancel()
    cpu = time.process_time() - cpu_before
    for connection in connections:
        if connection.transport is not None:
            connection.transport.close()
    return {"latencies": sorted(tally.latencies), "http": tally.http, "outcomes": tally.outcomes,
            "orders_ok": tally.orders_ok, "orders_failed": tally.orders_failed, "errors": tally.errors,
            "duration": spec["duration"], "scheduled": None, "backlog": 0, "late": 0,
            "generator_cpu": cpu, "wall": clock() - begin, "acks": acks}


def _generator_main() -> None:
    import uvloop

    spec = json.loads(sys.stdin.read())
    result = uvloop.run(_generate(spec))
    with open(spec["result_path"], "w") as handle:
        json.dump(result, handle)


# ---- the subscribers' process -------------------------------------------------------------------------

# ---- the delay from acknowledgement to trade frame -------------------------------------------------------

def taker_trades(service: ServiceProcess, users: list[tuple[str, str]], acks: list[list], since: str,
                 sample_users: int, rng: random.Random) -> dict[tuple[str, int], float]:
    """{(asset_id, trade number): ack time} for the taker fills of the acknowledged orders of a sample of users.

    An order's taker fills are its first trades (trade numbers rise in each book, and an order takes before it
    rests), as many as add up to what it had filled when it was answered."""
    import httpx

    keys = dict(users)
    by_user: dict[str, list[list]] = {}
    for ack in acks:
        by_user.setdefault(ack[2], []).append(ack)
    chosen = rng.sample(sorted(by_user), min(sample_users, len(by_user)))
    wanted: dict[tuple[str, int], float] = {}
    with httpx.Client(base_url=service.base_url, timeout=30.0) as client:
        for username in chosen:
            orders = {ack[1]: ack for ack in by_user[username]}
            headers = {"Authorization": f"Bearer {keys[username]}"}
            fills: dict[str, list[tuple[int, str]]] = {}
            for asset_id in sorted({ack[3] for ack in orders.values()}):
                offset = 0
                while True:
                    answer = client.get(f"/api/v1/transactions/{asset_id}", headers=headers,
                                        params={"limit": 100, "offset": offset, "start_date": since})
                    answer.raise_for_status()
                    data = answer.json()["data"]
                    for item in data["transactions"]:
                        if item["order_id"] in orders:
                            number = int(item["transaction_id"].rsplit("-", 2)[1])
                            fills.setdefault(item["order_id"], []).append((number, item["quantity"]))
                    offset += len(data["transactions"])
                    if not data["has_more"] or not data["transactions"]:
                        break
            from decimal import Decimal

            for order_id, trades in fills.items():
                ack_time, _, _, asset_id, filled = orders[order_id]
                left = Decimal(filled)
                for number, quantity in sorted(trades):
                    if left <= 0:
                        break
                    wanted[(asset_id, number)] = ack_time
                    left -= Decimal(quantity)
    return wanted


def delays(arrivals: list, assets: list[str], wanted: dict[tuple[str, int], float]) -> list[float]:
    """Seconds from each wanted trade's acknowledgement to its frame at each reading subscriber."""
    found = []
    for asset_column, trade_column, time_column in arrivals:
        for asset_index, number, arrived in zip(asset_column, trade_column, time_column):
            ack = wanted.get((assets[asset_index], number))
            if ack is not None:
                found.append(arrived - ack)
    found.sort()
    return found


# ---- the run -----------------------------------------------------------------------------------------------

def measure(service: ServiceProcess, meter: CpuMeter, base: dict, seed: int) -> dict:
    result, usage = http_load.run_generator(dict(base, seed=seed), meter)
    summary = summarize(result)
    summary["cpu"] = usage or {}
    summary["server_cores"] = sum(cores for kind, cores in summary["cpu"].items() if kind not in NOT_SERVER)
    summary["acks"] = result["acks"]
    return summary


def cpu_line(s: dict) -> str:
    cpu = s["cpu"]
    server = ", ".join(f"{kind} {cores:.2f}" for kind, cores in cpu.items()
                       if kind not in NOT_SERVER and cores >= 0.02)
    return (f"      cpu cores: server {s['server_cores']:.2f} ({server}); generator {cpu.get('generator', 0):.2f}; "
            f"subscribers {cpu.get('subscribers', 0):.2f}; whole machine {cpu.get('machine', 0):.2f}/{os.cpu_count()}")


def ms(values: list[float], fraction: float) -> str:
    return f"{percentile(values, fraction) * 1e3:.1f}" if values else "n/a"


def main() -> int:
    if "--generator" in sys.argv:
        _generator_main()
        return 0
    arguments = parse_arguments()
    # run_generator starts `HTTP_BENCH --generator`: this file's generator, which also notes acknowledgements.
    http_load.HTTP_BENCH = THIS
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="stream-bench-"))
    # source: this checkout's code in the gateway and in Ray's workers, whatever the venv's editable install points at.
    service = ServiceProcess(root / "service", sync=not arguments.no_sync, source=THIS.parent.parent)
    assets = [f"ST{index}" for index in range(arguments.assets)]
    rng = random.Random(7)
    try:
        ready = service.start()
        meter = CpuMeter(service)
        setup_started = time.monotonic()
        population = asyncio.run(create_population(service.base_url, service.admin_token,
                                                   user_count=arguments.users, assets=assets))
        setup = time.monotonic() - setup_started
        base = {"host": "127.0.0.1", "port": service.port, "users": population.users, "assets": assets,
                "market_share": arguments.market_share, "batch_size": 1, "warmup": arguments.warmup,
                "duration": arguments.duration, "timeout": 30.0, "mode": "closed", "kind": "single",
                "connections": arguments.connections, "pool": 20_000}
        info = conditions()
        print("Stream fan-out benchmark: single-order POSTs with no WebSocket subscribers vs with "
              f"{arguments.subscribers}, paired in one run", flush=True)
        print(f"  machine: {info['cpu']}, {info['cores']} cores; python {info['python']}; kernel {info['kernel']}; "
              f"load average before the phases {load_average()}")
        print(f"  service: fsync {'off' if arguments.no_sync else 'on'}, default layout, 1 gateway process, "
              f"ready in {ready:.1f}s; {arguments.users} users x (USD + {len(assets)} assets) set up in {setup:.1f}s")
        print(f"  HTTP load: 1 generator process (uvloop, raw keep-alive connections, http_load.py's requests), "
              f"closed loop, {arguments.connections} connections, limit buy/sell at {MID} ± 0.50, "
              f"{arguments.market_share:.0%} market orders, random user; {arguments.warmup:g}s warmup + "
              f"{arguments.duration:g}s measured per phase, {arguments.repeats} pairs, order swapped every other pair")
        print(f"  subscribers: {arguments.subscribers} WebSockets in {arguments.subscriber_processes} processes of "
              f"their own (asyncio + uvloop + websockets {__import__('websockets').__version__}), each on `book` and "
              f"`trades` of one asset (round robin over {', '.join(assets)}); {arguments.slow} never read "
              f"(receive buffer {SLOW_RECEIVE_BUFFER} B, client queue 1 frame); all subscribed before the "
              f"generator starts", flush=True)
        runs: dict[str, list[dict]] = {"none": [], "subs": []}
        all_delays: list[float] = []
        print("\nruns", flush=True)
        for repeat in range(arguments.repeats):
            order = ("none", "subs") if repeat % 2 == 0 else ("subs", "none")
            for condition in order:
                seed = 1000 * repeat + 7  # the same orders in both conditions of a pair
                if condition == "none":
                    s = measure(service, meter, base, seed)
                    runs["none"].append(s)
                    print(fmt_row(f"[{repeat + 1}] no subscribers", s, f"  http {s['http']}"), flush=True)
                    print(cpu_line(s), flush=True)
                    continue
                since = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
                subscribers = Subscribers(service, assets, arguments.subscribers, arguments.slow,
                                          arguments.subscriber_processes, root)
                for pid in subscribers.pids():
                    meter.watch(pid, "subscribers")
                try:
                    s = measure(service, meter, base, seed)
                finally:
                    for pid in subscribers.pids():
                        meter.pids.pop(pid, None)
                    counts = subscribers.stop()
                wanted = taker_trades(service, population.users, s["acks"], since, arguments.delay_users, rng)
                found = delays(counts["arrivals"], assets, wanted)
                all_delays.extend(found)
                s.update(connected=subscribers.connected, slow=subscribers.slow, counts=counts,
                         delays=found, wanted=len(wanted))
                runs["subs"].append(s)
                window = arguments.duration + arguments.warmup
                print(fmt_row(f"[{repeat + 1}] {subscribers.connected} subscribers", s, f"  http {s['http']}"),
                      flush=True)
                print(cpu_line(s), flush=True)
                reading = max(1, subscribers.connected - subscribers.slow)
                print(f"      frames received {counts['frames']} (~{counts['frames'] / window:.0f}/s over the phase, "
                      f"~{counts['frames'] / reading:.0f} per reading socket; "
                      f"trades {counts['trade_frames']}, book {counts['book_frames']}); never-reading sockets "
                      f"at the end: {counts['slow_closed']}; reading sockets closed early: "
                      f"{counts['reading_closed'] or 'none'}; connect failures {counts['connect_failures']}",
                      flush=True)
                print(f"      ack -> trade frame: {len(wanted)} taker trades of {min(arguments.delay_users, len(population.users))} "
                      f"users' orders, {len(found)} frame arrivals: p50 {ms(found, 0.5)} ms, p99 {ms(found, 0.99)} ms, "
                      f"max {ms(found, 1.0)} ms, {sum(1 for value in found if value < 0)} before the ack", flush=True)
        report(runs, all_delays, arguments)
        print(f"\ntotal wall time {time.monotonic() - started:.0f}s; load average at the end {load_average()}")
        return 0
    finally:
        code = service.stop()
        if code not in (0, None):
            print(f"note: the service exited with {code}:\n{service.log_tail(2000)}", file=sys.stderr)
        if arguments.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def report(runs: dict[str, list[dict]], all_delays: list[float], arguments: argparse.Namespace) -> None:
    none, subs = runs["none"], runs["subs"]
    if not none or not subs:
        return
    all_delays = sorted(all_delays)  # each pair's list is sorted, their concatenation is not
    median = statistics.median
    rate_none, rate_subs = median(s["requests_per_s"] for s in none), median(s["requests_per_s"] for s in subs)
    ratio = rate_subs / rate_none
    paired = ", ".join(f"{b['requests_per_s'] / a['requests_per_s']:.2f}" for a, b in zip(none, subs))
    print(f"\nmedians of {arguments.repeats} pairs")
    for label, s in (("no subscribers", none), (f"{arguments.subscribers} subscribers", subs)):
        print(f"  {label:<18} {median(r['requests_per_s'] for r in s):7.0f} req/s  "
              f"p50 {median(r['p50_ms'] for r in s):6.2f} ms  p99 {median(r['p99_ms'] for r in s):6.2f} ms  "
              f"server {median(r['server_cores'] for r in s):.2f} cores, machine "
              f"{median(r['cpu'].get('machine', 0) for r in s):.2f}/{os.cpu_count()}")
    p99_ratio = median(r["p99_ms"] for r in subs) / median(r["p99_ms"] for r in none)
    print(f"  req/s with / without = {ratio:.2f} (per pair: {paired}); p99 with / without = {p99_ratio:.2f}   "
          f"(target: within 10%: {'MET' if ratio >= 0.9 else 'MISSED'})")
    slow_closed: dict[str, int] = {}
    reading_closed: dict[str, int] = {}
    for s in subs:
        for code, number in s["counts"]["slow_closed"].items():
            slow_closed[code] = slow_closed.get(code, 0) + number
        for code, number in s["counts"]["reading_closed"].items():
            reading_closed[code] = reading_closed.get(code, 0) + number
    print(f"  never-reading sockets, {sum(s['slow'] for s in subs)} over the pairs, at the end: "
          + ", ".join(f"{'closed 1013' if code == '1013' else code} {n}" for code, n in sorted(slow_closed.items())))
    print(f"  reading sockets closed before the end: {reading_closed or 'none'}")
    early = sum(1 for value in all_delays if value < 0) / max(1, len(all_delays))
    print(f"  ack -> trade frame at reading subscribers, all pairs: {len(all_delays)} arrivals "
          f"({early:.0%} before the ack), "
          f"p50 {ms(all_delays, 0.5)} ms, p90 {ms(all_delays, 0.9)} ms, p99 {ms(all_delays, 0.99)} ms "
          f"(per pair p50/p99: " + ", ".join(f"{ms(s['delays'], 0.5)}/{ms(s['delays'], 0.99)}" for s in subs) + ")")


if __name__ == "__main__":
    sys.exit(main())
