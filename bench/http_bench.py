"""Orders per second and latency over HTTP: the real service against a no-op FastAPI baseline.

One run starts, on 127.0.0.1 and free ports:
- the real service (`order-service serve`, temp data dir, fsync on, its own local Ray),
- the no-op FastAPI app of `noop_app.py` (same uvicorn settings; validates the same
  `OrderCreateRequest` and the bearer header, answers a small envelope),
- a raw HTTP sink (`noop_app.py --raw`) that measures the load generator's own ceiling,
creates `--users` funded users and `--assets` assets over the admin API, and drives every
target with the same load generator: a separate process running uvloop with raw asyncio
keep-alive connections and the httptools response parser (no HTTP client library, so the
generator is cheap; its ceiling is printed next to the baseline's figure).

Phases, each `--warmup` + `--duration` seconds, `--repeats` times (medians printed):
  ceiling   closed loop, single-order POSTs against the raw sink (the generator's ceiling;
            `--ceiling-repeats` times, default once)
  noop      closed loop, single-order `POST /api/v1/orders` against the no-op app
  single    closed loop, single-order `POST /api/v1/orders` against the service
  batch     closed loop, `POST /api/v1/orders/batch` with `--batch-size` orders per request
  open      open loop at a fixed arrival rate = `--rate-fraction` x the median `single` peak;
            latency is measured from each request's scheduled time (no coordinated omission)

Orders: limit buys and sells uniform in 100.00 ± 0.50 (so they cross and settle), quantities
0.01–1.00, and `--market-share` small market orders, from users chosen at random. A batch is
one user's quotes: bids below and asks above a reference near the mid, then at most one market
sell and one market buy (a market buy holds all of the user's USD while it matches).

Besides throughput and latency it prints, per phase, the CPU the server processes used in the
measured window (gateway and each kind of Ray actor, read from /proc), CPU-microseconds per
request, and how busy the whole machine was (other tenants included); `--profile DIR` adds
py-spy profiles of the gateway and the actors (and of the no-op app) with their top costs.

    .venv/bin/python bench/http_bench.py [--duration 8] [--warmup 2] [--repeats 3] [--connections 64]
                                         [--profile /tmp/prof] [--rate 200] [--phases single,batch]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.http_load import _generator_main  # noqa: E402
from bench.http_measure import CpuMeter, Profiler  # noqa: E402
from bench.load_setup import MID, ServiceProcess, conditions, create_population, free_port  # noqa: E402
from bench.targets import start_noop, start_peer, stop_process  # noqa: E402

HERE = Path(__file__).resolve().parent


def percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summarize(result: dict, orders_per_request: int = 1) -> dict:
    latencies = result["latencies"]
    count = len(latencies)
    summary = {"requests_per_s": count / result["duration"],
               "p50_ms": percentile(latencies, 0.50) * 1e3, "p90_ms": percentile(latencies, 0.90) * 1e3,
               "p99_ms": percentile(latencies, 0.99) * 1e3, "max_ms": (latencies[-1] * 1e3 if latencies else 0),
               "requests": count, "http": result["http"], "outcomes": result["outcomes"],
               "errors": result["errors"], "generator_cpu_share": result["generator_cpu"] / max(result["wall"], 1e-9)}
    summary["orders_per_s"] = (result["orders_ok"] / result["duration"] if orders_per_request > 1
                               else summary["requests_per_s"])
    summary["orders_ok"] = result["orders_ok"]
    summary["orders_failed"] = result["orders_failed"]
    if result.get("scheduled") is not None:
        summary["scheduled"] = result["scheduled"]
        summary["backlog"] = result["backlog"]
        summary["late"] = result["late"]
    return summary


def run_generator(spec: dict, meter: CpuMeter | None = None, profiler: Profiler | None = None,
                  label: str = "", profile_kinds: tuple[str, ...] = ()) -> tuple[dict, dict | None]:
    """Run one generator process for one phase; return its tally and the CPU use inside its measured window."""
    # The tally goes through a file: stdout carries the WINDOW line, and nothing else may mix into it.
    with tempfile.NamedTemporaryFile(prefix="generator-", suffix=".json", delete=False) as handle:
        spec = dict(spec, result_path=handle.name)
    process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--generator"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    usage = None
    if meter is not None:
        meter.watch(process.pid, "generator")
    try:
        process.stdin.write(json.dumps(spec).encode())
        process.stdin.close()
        line = process.stdout.readline().decode()
        if line.startswith("WINDOW") and meter is not None:
            measure_from, measure_to = (float(value) for value in line.split()[1:])
            time.sleep(max(0.0, measure_from - time.monotonic()))
            before = meter.sample()
            recording = (profiler.start(label, meter, measure_to - time.monotonic(), profile_kinds)
                         if profiler and profile_kinds else None)
            time.sleep(max(0.0, measure_to - time.monotonic()))
            usage = meter.usage(before, meter.sample())
            if recording:
                profiler.finish(recording)
        process.stdout.read()  # to its end: the generator exits once its tally is written
        process.wait(timeout=spec["warmup"] + spec["duration"] + spec["timeout"] + 120)
    finally:
        if meter is not None:
            meter.pids.pop(process.pid, None)
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"the generator failed:\n{process.stderr.read().decode(errors='replace')[-3000:]}")
    try:
        return json.loads(Path(spec["result_path"]).read_text()), usage
    finally:
        os.unlink(spec["result_path"])


NOT_SERVICE = {"generator", "no-op app", "raw sink", "peer gateway", "machine", "seconds"}

def fmt_row(name: str, s: dict, extra: str = "") -> str:
    return (f"  {name:<34} {s['requests_per_s']:>9.0f} req/s  p50 {s['p50_ms']:6.2f} ms  p90 {s['p90_ms']:6.2f} ms  "
            f"p99 {s['p99_ms']:6.2f} ms  max {s['max_ms']:7.1f} ms  n={s['requests']}{extra}")


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def main() -> int:
    if "--generator" in sys.argv:
        _generator_main()
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per phase (default 8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each phase (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of every phase (default 3)")
    parser.add_argument("--ceiling-repeats", type=int, default=1,
                        help="repeats of the generator-ceiling calibration (default 1)")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections, peak phases (default 64)")
    parser.add_argument("--batch-connections", type=int, default=16,
                        help="connections for the batch phase (default 16)")
    parser.add_argument("--open-connections", type=int, default=128,
                        help="connections available to the open-loop phase (default 128)")
    parser.add_argument("--batch-size", type=int, default=100, help="orders per batch request (default 100)")
    parser.add_argument("--rate-fraction", type=float, default=0.5,
                        help="open-loop arrival rate as a fraction of the median single-order peak (default 0.5)")
    parser.add_argument("--rate", type=float, default=None,
                        help="open-loop arrival rate in requests/s (default: --rate-fraction x the measured peak)")
    parser.add_argument("--users", type=int, default=200, help="funded users (default 200)")
    parser.add_argument("--assets", type=int, default=2, help="assets traded (default 2)")
    parser.add_argument("--market-share", type=float, default=0.1, help="share of market orders (default 0.1)")
    parser.add_argument("--no-sync", action="store_true", help="run the service with fsync off (default: on)")
    parser.add_argument("--shards", type=int, default=None,
                        help="account shards of the service (and the baseline); default: the service's own")
    parser.add_argument("--book-actors", type=int, default=None,
                        help="book actors of the service (and the baseline); default: the service's own")
    parser.add_argument("--phases", default="ceiling,noop,peer,single,batch,open",
                        help="comma-separated subset of ceiling,noop,peer,single,batch,open")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (logs, data)")
    parser.add_argument("--profile", metavar="DIR",
                        help="py-spy the gateway and the actors during every service phase's measured window (and the "
                             "no-op app during its phase), "
                             "raw stacks into DIR, and print the top costs (slows the service a little)")
    parser.add_argument("--baseline", metavar="GIT_REF",
                        help="also run the service as of GIT_REF (a git worktree in the temp directory, same venv) "
                             "and measure its single-order phase right after ours in every repeat: before/after "
                             "figures from one run")
    parser.add_argument("--pause", type=float, default=0.0,
                        help="seconds to wait after setup before the phases (e.g. to attach py-spy)")
    arguments = parser.parse_args()
    phases = set(arguments.phases.split(","))

    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="http-bench-"))
    layout = {name: str(value) for name, value in (("ORDER_SERVICE_SHARDS", arguments.shards),
                                                    ("ORDER_SERVICE_BOOK_ACTORS", arguments.book_actors))
              if value is not None}
    service = ServiceProcess(root / "service", sync=not arguments.no_sync, settings=layout)
    noop = sink = peer = baseline = None
    worktree = None
    noop_port, sink_port, peer_port = free_port(), free_port(), free_port()
    try:
        ready_seconds = service.start()
        meter = CpuMeter(service)
        profiler = Profiler(Path(arguments.profile)) if arguments.profile else None
        if "noop" in phases:
            noop = start_noop(noop_port, False, root / "noop.log")
            meter.watch(noop.pid, "no-op app")
        if "ceiling" in phases:
            sink = start_noop(sink_port, True, root / "sink.log")
            meter.watch(sink.pid, "raw sink")
        assets = [f"BN{index}" for index in range(arguments.assets)]
        if arguments.baseline:
            worktree = root / "baseline-src"
            subprocess.run(["git", "-C", str(HERE.parent), "worktree", "add", "--quiet", "--detach", str(worktree),
                            arguments.baseline], check=True)
            revision = subprocess.run(["git", "-C", str(worktree), "log", "-1", "--format=%h %s"],
                                      capture_output=True, text=True, check=True).stdout.strip()
            baseline = ServiceProcess(root / "baseline", sync=not arguments.no_sync, source=worktree,
                                      settings=layout)
            baseline.start()
            baseline_meter = CpuMeter(baseline)
            baseline_population = asyncio.run(create_population(baseline.base_url, baseline.admin_token,
                                                                user_count=arguments.users, assets=assets))
        if "peer" in phases:
            peer = start_peer(peer_port, root / "peer", assets, root / "peer.log")
            meter.watch(peer.pid, "peer gateway")
        setup_started = time.monotonic()
        population = asyncio.run(create_population(service.base_url, service.admin_token,
                                                   user_count=arguments.users, assets=assets))
        setup_seconds = time.monotonic() - setup_started
        info = conditions()
        print("HTTP benchmark: order service vs no-op FastAPI baseline, one run", flush=True)
        print(f"  cpu: {info['cpu']}, {info['cores']} cores; python {info['python']}; kernel {info['kernel']}; "
              f"load average before the phases {Path('/proc/loadavg').read_text().split()[0:3]}")
        print(f"  service: fsync {'off' if arguments.no_sync else 'on'}, "
              f"{arguments.shards or 'default'} shards and {arguments.book_actors or 'default'} book actors, "
              f"ready in {ready_seconds:.1f}s, "
              f"setup of {arguments.users} users x (USD + {len(assets)} assets) in {setup_seconds:.1f}s; "
              f"data {service.data_dir}")
        print("  server settings (service and no-op): uvicorn, uvloop, httptools, 1 process, access log off")
        print("  generator: 1 separate process, uvloop + raw asyncio keep-alive connections + httptools parser")
        print(f"  phases: {arguments.warmup:g}s warmup + {arguments.duration:g}s measured, {arguments.repeats} repeats; "
              f"connections {arguments.connections} (batch {arguments.batch_connections}, "
              f"open loop up to {arguments.open_connections})")
        print(f"  orders: limit buy/sell at {MID} ± 0.50 (tick 0.01), qty 0.01–1.00, "
              f"{arguments.market_share:.0%} market orders, random user of {arguments.users}, "
              f"{len(assets)} assets;\n          batch: {arguments.batch_size} orders/request, one user's bids below and asks above a reference in "
              f"mid ± 0.25, then one market sell and one market buy, each connection sending for its own users",
              flush=True)
        if baseline is not None:
            print(f"  baseline: the service as of {arguments.baseline} ({revision}), same settings, its own Ray "
                  f"and data; its single phase runs right after ours in every repeat", flush=True)
        if arguments.pause:
            print(f"  pausing {arguments.pause:g}s: service pid {service.process.pid}", flush=True)
            time.sleep(arguments.pause)

        base = {"host": "127.0.0.1", "users": population.users, "assets": population.assets,
                "market_share": arguments.market_share, "batch_size": arguments.batch_size,
                "warmup": arguments.warmup, "duration": arguments.duration, "timeout": 30.0, "mode": "closed"}
        runs: dict[str, list[dict]] = {name: [] for name in ("ceiling", "noop", "peer", "single", "baseline",
                                                             "batch", "open", "peer open", "baseline open")}

        def phase(name: str, repeat: int, phase_meter: CpuMeter | None = None, **spec_changes) -> dict:
            spec = dict(base, seed=1000 * repeat + 10 * list(runs).index(name), **spec_changes)
            spec.setdefault("pool", 400 if spec.get("kind") == "batch" else 20_000)
            kinds = {"noop": ("no-op app",), "ceiling": (), "peer": ("peer gateway",),
                     "peer open": ("peer gateway",)}.get(name, ("gateway", "shard actors", "book actors"))
            result, usage = run_generator(spec, phase_meter or meter, profiler, f"{name}{repeat + 1}", kinds)
            summary = summarize(result, arguments.batch_size if spec["kind"] == "batch" else 1)
            summary["cpu"] = usage or {}
            server_kinds = {"ceiling": ["raw sink"], "noop": ["no-op app"], "peer": ["peer gateway"],
                            "peer open": ["peer gateway"]}.get(name)
            if server_kinds is None:
                server_kinds = [kind for kind in summary["cpu"] if kind not in NOT_SERVICE]
            summary["server_cores"] = sum(summary["cpu"].get(kind, 0.0) for kind in server_kinds)
            summary["server_us_per_request"] = (summary["server_cores"] * 1e6 / summary["requests_per_s"]
                                                if summary["requests_per_s"] else float("nan"))
            runs[name].append(summary)
            return summary

        def cpu_note(s: dict, service_phase: bool) -> str:
            cpu = s["cpu"]
            parts = ""
            if service_phase:
                parts = " (" + ", ".join(f"{kind} {cores:.2f}" for kind, cores in cpu.items()
                                         if kind not in NOT_SERVICE and cores >= 0.02) + ")"
            return (f"\n      cpu cores: server {s['server_cores']:.2f}{parts}; generator {cpu.get('generator', 0):.2f}; "
                    f"whole machine {cpu.get('machine', 0):.2f}/{os.cpu_count()} -> server "
                    f"{s['server_us_per_request']:.0f} cpu-us/request")

        print("\nruns", flush=True)
        for repeat in range(arguments.repeats):
            if "ceiling" in phases and repeat < arguments.ceiling_repeats:
                s = phase("ceiling", repeat, port=sink_port, kind="single", connections=arguments.connections)
                print(fmt_row(f"[{repeat + 1}] generator ceiling (raw sink)", s) + cpu_note(s, False), flush=True)
            if "noop" in phases:
                s = phase("noop", repeat, port=noop_port, kind="single", connections=arguments.connections)
                print(fmt_row(f"[{repeat + 1}] no-op FastAPI, single", s) + cpu_note(s, False), flush=True)
            if "peer" in phases:
                s = phase("peer", repeat, port=peer_port, kind="single", connections=arguments.connections,
                          target="peer")
                print(fmt_row(f"[{repeat + 1}] matching-engine gateway, single", s, f"  http {s['http']}")
                      + cpu_note(s, False), flush=True)
            if "single" in phases:
                s = phase("single", repeat, port=service.port, kind="single", connections=arguments.connections)
                print(fmt_row(f"[{repeat + 1}] service, single", s, f"  http {s['http']}") + cpu_note(s, True),
                      flush=True)
            if baseline is not None and "single" in phases:
                s = phase("baseline", repeat, baseline_meter, port=baseline.port, kind="single",
                          connections=arguments.connections, users=baseline_population.users)
                print(fmt_row(f"[{repeat + 1}] baseline service, single", s, f"  http {s['http']}")
                      + cpu_note(s, True), flush=True)
            if "batch" in phases:
                s = phase("batch", repeat, port=service.port, kind="batch", connections=arguments.batch_connections,
                          partition_users=True)
                print(fmt_row(f"[{repeat + 1}] service, batch x{arguments.batch_size}", s,
                              f"  -> {s['orders_per_s']:.0f} orders/s ok, {s['orders_failed']} refused, "
                              f"http {s['http']}") + cpu_note(s, True), flush=True)
        rate = None
        if "open" in phases and (runs["single"] or arguments.rate):
            rate = arguments.rate or arguments.rate_fraction * median_of(runs["single"], "requests_per_s")
            for repeat in range(arguments.repeats):
                s = phase("open", repeat, port=service.port, kind="single", connections=arguments.open_connections,
                          mode="open", rate=rate)
                print(fmt_row(f"[{repeat + 1}] service, open loop {rate:.0f}/s", s,
                              f"  backlog {s['backlog']} late {s['late']} errors {s['errors']}")
                      + cpu_note(s, True), flush=True)
                if baseline is not None:
                    s = phase("baseline open", repeat, baseline_meter, port=baseline.port, kind="single",
                              connections=arguments.open_connections, mode="open", rate=rate,
                              users=baseline_population.users)
                    print(fmt_row(f"[{repeat + 1}] baseline service, open loop {rate:.0f}/s", s,
                                  f"  backlog {s['backlog']} late {s['late']} errors {s['errors']}")
                          + cpu_note(s, True), flush=True)
                if "peer" in phases:
                    s = phase("peer open", repeat, port=peer_port, kind="single",
                              connections=arguments.open_connections, mode="open", rate=rate, target="peer")
                    print(fmt_row(f"[{repeat + 1}] matching-engine gateway, open loop {rate:.0f}/s", s,
                                  f"  backlog {s['backlog']} late {s['late']} errors {s['errors']}")
                          + cpu_note(s, False), flush=True)

        print(f"\nmedians of {arguments.repeats} repeats")
        if runs["ceiling"]:
            print(f"  generator ceiling (raw sink):      {median_of(runs['ceiling'], 'requests_per_s'):9.0f} req/s  "
                  f"(generator {statistics.median(r['cpu'].get('generator', 0) for r in runs['ceiling']):.2f} cores)")
        if runs["noop"]:
            s = runs["noop"]
            print(f"  no-op FastAPI, single POST:        {median_of(s, 'requests_per_s'):9.0f} req/s  "
                  f"p50 {median_of(s, 'p50_ms'):.2f} ms  p90 {median_of(s, 'p90_ms'):.2f} ms  "
                  f"p99 {median_of(s, 'p99_ms'):.2f} ms  server {median_of(s, 'server_us_per_request'):.0f} cpu-us/req")
            if runs["ceiling"]:
                share = median_of(s, "requests_per_s") / median_of(runs["ceiling"], "requests_per_s")
                print(f"    no-op / generator ceiling = {share:.2f} "
                      f"({'the generator is not the limit' if share < 0.7 else 'the generator may limit the no-op'})")
        if runs["peer"]:
            s = runs["peer"]
            print(f"  matching-engine gateway, single:   {median_of(s, 'requests_per_s'):9.0f} req/s  "
                  f"p50 {median_of(s, 'p50_ms'):.2f} ms  p90 {median_of(s, 'p90_ms'):.2f} ms  "
                  f"p99 {median_of(s, 'p99_ms'):.2f} ms  server {median_of(s, 'server_us_per_request'):.0f} cpu-us/req")
            if runs["noop"]:
                print(f"    matching-engine / no-op = "
                      f"{median_of(s, 'requests_per_s') / median_of(runs['noop'], 'requests_per_s'):.2f}x")
        if runs["single"]:
            s = runs["single"]
            print(f"  service, single POST:              {median_of(s, 'requests_per_s'):9.0f} req/s  "
                  f"p50 {median_of(s, 'p50_ms'):.2f} ms  p90 {median_of(s, 'p90_ms'):.2f} ms  "
                  f"p99 {median_of(s, 'p99_ms'):.2f} ms  server {median_of(s, 'server_us_per_request'):.0f} cpu-us/req")
            if runs["noop"]:
                ratio = median_of(s, "requests_per_s") / median_of(runs["noop"], "requests_per_s")
                print(f"    service / no-op = {ratio:.2f}x")
            if runs["peer"]:
                ratio = median_of(s, "requests_per_s") / median_of(runs["peer"], "requests_per_s")
                print(f"    service / matching-engine gateway = {ratio:.2f}x   "
                      f"(target >= 1.0x: {'MET' if ratio >= 1.0 else 'MISSED'})")
        if runs["baseline"]:
            s = runs["baseline"]
            print(f"  baseline ({arguments.baseline}), single POST: {median_of(s, 'requests_per_s'):6.0f} req/s  "
                  f"p50 {median_of(s, 'p50_ms'):.2f} ms  p90 {median_of(s, 'p90_ms'):.2f} ms  "
                  f"p99 {median_of(s, 'p99_ms'):.2f} ms  server {median_of(s, 'server_us_per_request'):.0f} cpu-us/req")
            if runs["single"]:
                paired = ", ".join(f"{ours['requests_per_s'] / theirs['requests_per_s']:.2f}"
                                   for ours, theirs in zip(runs["single"], s))
                print(f"    service / baseline = "
                      f"{median_of(runs['single'], 'requests_per_s') / median_of(s, 'requests_per_s'):.2f}x "
                      f"(per repeat: {paired})")
        if runs["batch"]:
            s = runs["batch"]
            orders = median_of(s, "orders_per_s")
            print(f"  service, batch of {arguments.batch_size}:             {orders:9.0f} orders/s accepted "
                  f"({median_of(s, 'requests_per_s'):.0f} req/s, request p50 {median_of(s, 'p50_ms'):.1f} ms "
                  f"p99 {median_of(s, 'p99_ms'):.1f} ms, server "
                  f"{median_of(s, 'server_us_per_request') / arguments.batch_size:.0f} cpu-us/order)"
                  f"   (target >= 20000: {'MET' if orders >= 20000 else 'MISSED'})")
        if runs["open"]:
            s = runs["open"]
            p99 = median_of(s, "p99_ms")
            how = "fixed" if arguments.rate else f"{arguments.rate_fraction:g} x peak"
            print(f"  service, open loop at {rate:.0f} req/s ({how}): achieved "
                  f"{median_of(s, 'requests_per_s'):.0f} req/s  p50 {median_of(s, 'p50_ms'):.2f} ms  "
                  f"p90 {median_of(s, 'p90_ms'):.2f} ms  p99 {p99:.2f} ms   "
                  f"(target p99 < 25 ms: {'MET' if p99 < 25 else 'MISSED'})")
        if runs["baseline open"]:
            s = runs["baseline open"]
            print(f"  baseline ({arguments.baseline}), open loop at {rate:.0f} req/s: achieved "
                  f"{median_of(s, 'requests_per_s'):.0f} req/s  p50 {median_of(s, 'p50_ms'):.2f} ms  "
                  f"p90 {median_of(s, 'p90_ms'):.2f} ms  p99 {median_of(s, 'p99_ms'):.2f} ms")
        if runs["peer open"]:
            s = runs["peer open"]
            print(f"  matching-engine gateway, open loop at {rate:.0f} req/s: achieved "
                  f"{median_of(s, 'requests_per_s'):.0f} req/s  p50 {median_of(s, 'p50_ms'):.2f} ms  "
                  f"p90 {median_of(s, 'p90_ms'):.2f} ms  p99 {median_of(s, 'p99_ms'):.2f} ms")
        for name in ("peer", "single", "batch", "open"):
            outcomes: dict[str, int] = {}
            for run in runs[name]:
                for word, count in run["outcomes"].items():
                    outcomes[word] = outcomes.get(word, 0) + count
            if outcomes:
                total = sum(outcomes.values())
                print(f"  order outcomes, {name}: " + ", ".join(
                    f"{word} {count / total:.1%}" for word, count in sorted(outcomes.items(), key=lambda i: -i[1])))
        busy = [run["cpu"].get("machine", 0) for name in runs for run in runs[name] if run["cpu"]]
        if busy:
            print(f"  whole machine busy during the measured windows: median {statistics.median(busy):.2f} of "
                  f"{os.cpu_count()} cores (every process on the host, ours and others'); "
                  f"load average at the end {Path('/proc/loadavg').read_text().split()[0:3]}")
        if profiler:
            profiler.report()
        print(f"\ntotal wall time {time.monotonic() - started:.0f}s")
        return 0
    finally:
        stop_process(noop)
        stop_process(sink)
        stop_process(peer)
        if baseline is not None:
            baseline.stop()
        if worktree is not None:
            subprocess.run(["git", "-C", str(HERE.parent), "worktree", "remove", "--force", str(worktree)],
                           check=False)
        code = service.stop()
        if code not in (0, None):
            print(f"note: the service exited with code {code} after SIGTERM "
                  f"(log: {'clean shutdown' if 'Application shutdown complete' in service.log_tail() else 'see below'})",
                  file=sys.stderr)
            if "Application shutdown complete" not in service.log_tail():
                print(service.log_tail(2000), file=sys.stderr)
        if arguments.keep:
            print(f"kept {root}")
        else:
            import shutil

            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
