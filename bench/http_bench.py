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
  sequential one keep-alive connection, single-order POSTs one after another (each followed by a
            GET /health/live on the same connection: its p50 is the floor); the baseline's and the
            peer's (GET /healthz) right after ours
  batch     closed loop, `POST /api/v1/orders/batch` with `--batch-size` orders per request
  open      open loop at a fixed arrival rate = `--rate-fraction` x the median `single` peak;
            latency is measured from each request's scheduled time (no coordinated omission)

Orders: limit buys and sells uniform in 100.00 ± 0.50 (so they cross and settle), quantities
0.01–1.00, and `--market-share` small market orders, from users chosen at random. A batch is
one user's quotes: bids below and asks above a reference near the mid, then at most one market
sell and one market buy (a market buy holds all of the user's USD while it matches).

Besides throughput and latency it prints, per phase, the CPU the server processes used in the
measured window (gateway and each kind of Ray actor, through psutil), CPU-microseconds per
request, and how busy the whole machine was (other tenants included); `--profile DIR` adds
py-spy profiles of the gateway and the actors (and of the no-op app) with their top costs.

    .venv/bin/python bench/http_bench.py [--duration 8] [--warmup 2] [--repeats 3] [--connections 64]
                                         [--profile /tmp/prof] [--rate 200] [--phases single,batch]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.http_load import _generator_main, run_generator  # noqa: E402
from bench.http_measure import CpuMeter, Profiler  # noqa: E402
from bench.http_report import (  # noqa: E402
    NOT_SERVICE, cpu_note, fmt_row, median_of, print_report, summarize,
)
from bench.load_setup import (  # noqa: E402
    MID, Population, ServiceProcess, conditions, create_population, free_port,
)
from bench.machine import load_average  # noqa: E402
from bench.targets import start_noop, start_peer, stop_process  # noqa: E402

HERE = Path(__file__).resolve().parent

# Every kind of phase, in the order that also spreads their generators' seeds apart.
RUN_NAMES = ("ceiling", "noop", "peer", "single", "baseline", "batch", "open", "peer open", "baseline open",
             "baseline batch", "sequential", "baseline sequential", "peer sequential")
# What py-spy samples, and whose CPU counts as the server's, in the phases that do not measure the service.
PROFILED_KINDS = {"noop": ("no-op app",), "ceiling": (), "peer": ("peer gateway",),
                  "peer open": ("peer gateway",), "peer sequential": ("peer gateway",)}
SERVICE_KINDS = ("gateway", "shard actors", "book actors")
SERVER_KINDS = {"ceiling": ["raw sink"], "noop": ["no-op app"], "peer": ["peer gateway"],
                "peer open": ["peer gateway"], "peer sequential": ["peer gateway"]}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per phase (default 8)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="unmeasured seconds before each phase (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of every phase (default 3)")
    parser.add_argument("--ceiling-repeats", type=int, default=1,
                        help="repeats of the generator-ceiling calibration (default 1)")
    parser.add_argument("--connections", type=int, default=64,
                        help="keep-alive connections, peak phases (default 64)")
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
    parser.add_argument("--phases", default="ceiling,noop,peer,sequential,single,batch,open",
                        help="comma-separated subset of ceiling,noop,peer,sequential,single,batch,open")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (logs, data)")
    parser.add_argument("--profile", metavar="DIR",
                        help="py-spy the gateway and the actors during every service phase's measured window "
                             "(and the no-op app during its phase), raw stacks into DIR, and print the top "
                             "costs (slows the service a little)")
    parser.add_argument("--baseline", metavar="GIT_REF",
                        help="also run the service as of GIT_REF (a git worktree in the temp directory, same "
                             "venv) and measure its single-order phase right after ours in every repeat: "
                             "before/after figures from one run")
    parser.add_argument("--metrics-off", action="store_true",
                        help="also run this checkout with ORDER_SERVICE_METRICS=false as the baseline and measure "
                             "its single-order phase right after ours in every repeat: the cost of the metrics, "
                             "paired in one run")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="run the service with one gateway process and, as the baseline, this checkout with "
                             "ORDER_SERVICE_WORKERS=N, each phase of the baseline right after ours in every "
                             "repeat: gateway processes compared, paired in one run")
    parser.add_argument("--ray-address", default=None,
                        help="attach the service (and the baseline) to this Ray cluster, whose actor tier "
                             "`order-service actors` created (bench/cluster_bench.py does)")
    parser.add_argument("--admin-token", default=None, help="the cluster's admin token (with --ray-address)")
    parser.add_argument("--limits-on", type=float, metavar="RATE", default=None,
                        help="run this checkout with ORDER_SERVICE_ORDER_RATE and ORDER_SERVICE_READ_RATE at RATE "
                             "(high enough that nobody is refused), and as the baseline with limits off, and "
                             "measure the baseline's single-order phase right after ours in every repeat: the "
                             "cost of the limits, paired in one run")
    parser.add_argument("--pause", type=float, default=0.0,
                        help="seconds to wait after setup before the phases (e.g. to attach py-spy)")
    arguments = parser.parse_args()
    if sum(map(bool, (arguments.metrics_off, arguments.baseline, arguments.workers, arguments.limits_on))) > 1:
        parser.error("--metrics-off, --baseline, --workers and --limits-on each choose the baseline: give one")
    return arguments


@dataclass
class Run:
    """One run's targets, meters and results; `stop_targets` stops whatever of it was started."""

    arguments: argparse.Namespace
    root: Path
    service: ServiceProcess
    assets: list[str]
    phases: set[str]
    noop_port: int = field(default_factory=free_port)
    sink_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    meter: CpuMeter | None = None
    profiler: Profiler | None = None
    noop: subprocess.Popen | None = None
    sink: subprocess.Popen | None = None
    peer: subprocess.Popen | None = None
    worktree: Path | None = None
    revision: str = ""
    baseline: ServiceProcess | None = None
    baseline_meter: CpuMeter | None = None
    baseline_population: Population | None = None
    population: Population | None = None
    ready_seconds: float = 0.0
    setup_seconds: float = 0.0
    base: dict = field(default_factory=dict)  # the generator's spec shared by every phase
    runs: dict[str, list[dict]] = field(default_factory=lambda: {name: [] for name in RUN_NAMES})
    rate: float | None = None  # the open loop's arrival rate, once known


# ---- set-up -----------------------------------------------------------------------------------------

def new_run(arguments: argparse.Namespace) -> Run:
    """A run on a fresh temp directory, its service not yet started."""
    root = Path(tempfile.mkdtemp(prefix="http-bench-"))
    layout = {name: str(value) for name, value in (("ORDER_SERVICE_SHARDS", arguments.shards),
                                                    ("ORDER_SERVICE_BOOK_ACTORS", arguments.book_actors))
              if value is not None}
    if arguments.workers:
        layout["ORDER_SERVICE_WORKERS"] = "1"
    if arguments.ray_address:
        layout["RAY_ADDRESS"] = arguments.ray_address
    limits = {"ORDER_SERVICE_ORDER_RATE": str(arguments.limits_on), "ORDER_SERVICE_READ_RATE": str(arguments.limits_on)
              } if arguments.limits_on else {}
    service = ServiceProcess(root / "service", sync=not arguments.no_sync, settings={**layout, **limits})
    if arguments.admin_token:
        service.admin_token = arguments.admin_token
    return Run(arguments, root, service, assets=[f"BN{index}" for index in range(arguments.assets)],
               phases=set(arguments.phases.split(",")))


def start_targets(run: Run) -> None:
    """Start the service and the other targets the phases need, and create the service's traders."""
    arguments = run.arguments
    run.ready_seconds = run.service.start()
    run.meter = CpuMeter(run.service)
    run.profiler = Profiler(Path(arguments.profile)) if arguments.profile else None
    if "noop" in run.phases:
        run.noop = start_noop(run.noop_port, False, run.root / "noop.log")
        run.meter.watch(run.noop.pid, "no-op app")
    if "ceiling" in run.phases:
        run.sink = start_noop(run.sink_port, True, run.root / "sink.log")
        run.meter.watch(run.sink.pid, "raw sink")
    if arguments.baseline or arguments.metrics_off or arguments.workers or arguments.limits_on:
        start_baseline(run)
    if "peer" in run.phases:
        run.peer = start_peer(run.peer_port, run.root / "peer", run.assets, run.root / "peer.log")
        run.meter.watch(run.peer.pid, "peer gateway")
    setup_started = time.monotonic()
    run.population = asyncio.run(create_population(run.service.base_url, run.service.admin_token,
                                                   user_count=arguments.users, assets=run.assets))
    run.setup_seconds = time.monotonic() - setup_started
    run.base = {"host": "127.0.0.1", "users": run.population.users, "assets": run.population.assets,
                "market_share": arguments.market_share, "batch_size": arguments.batch_size,
                "warmup": arguments.warmup, "duration": arguments.duration, "timeout": 30.0, "mode": "closed"}


def start_baseline(run: Run) -> None:
    """Start the baseline as a second service with its own traders: `--baseline` checked out in a git
    worktree, or (`--metrics-off`) this checkout with its metrics switched off."""
    if run.arguments.workers:
        run.revision = f"this checkout, ORDER_SERVICE_WORKERS={run.arguments.workers}"
        run.baseline = ServiceProcess(run.root / "baseline", sync=run.service.sync,
                                      admin_token=run.service.admin_token,
                                      settings={**run.service.settings,
                                                "ORDER_SERVICE_WORKERS": str(run.arguments.workers)})
    elif run.arguments.metrics_off:
        run.revision = "this checkout, ORDER_SERVICE_METRICS=false"
        run.baseline = ServiceProcess(run.root / "baseline", sync=run.service.sync,
                                      settings={**run.service.settings, "ORDER_SERVICE_METRICS": "false"})
    elif run.arguments.limits_on:
        run.revision = "this checkout, rate limits off"
        settings = {name: value for name, value in run.service.settings.items() if not name.endswith("_RATE")}
        run.baseline = ServiceProcess(run.root / "baseline", sync=run.service.sync, settings=settings)
    else:
        worktree = run.worktree = run.root / "baseline-src"
        subprocess.run(["git", "-C", str(HERE.parent), "worktree", "add", "--quiet", "--detach", str(worktree),
                        run.arguments.baseline], check=True)
        run.revision = subprocess.run(["git", "-C", str(worktree), "log", "-1", "--format=%h %s"],
                                      capture_output=True, text=True, check=True).stdout.strip()
        run.baseline = ServiceProcess(run.root / "baseline", sync=run.service.sync, source=worktree,
                                      settings=run.service.settings)
    run.baseline.start()
    run.baseline_meter = CpuMeter(run.baseline)
    run.baseline_population = asyncio.run(create_population(
        run.baseline.base_url, run.baseline.admin_token, user_count=run.arguments.users, assets=run.assets))


def print_conditions(run: Run) -> None:
    """The machine, the service's settings, the generator and the phases, before any figure."""
    arguments, info = run.arguments, conditions()
    print("HTTP benchmark: order service vs no-op FastAPI baseline, one run", flush=True)
    # The load average as a list, as earlier runs printed it.
    print(f"  cpu: {info['cpu']}, {info['cores']} cores; python {info['python']}; kernel {info['kernel']}; "
          f"load average before the phases {load_average().split()}")
    print(f"  service: fsync {'off' if arguments.no_sync else 'on'}, "
          f"{arguments.shards or 'default'} shards and {arguments.book_actors or 'default'} book actors, "
          f"ready in {run.ready_seconds:.1f}s, "
          f"setup of {arguments.users} users x (USD + {len(run.assets)} assets) in {run.setup_seconds:.1f}s; "
          f"data {run.service.data_dir}")
    print("  server settings (service and no-op): uvicorn, uvloop, httptools, 1 process, access log off")
    print("  generator: 1 separate process, uvloop + raw asyncio keep-alive connections + httptools parser")
    print(f"  phases: {arguments.warmup:g}s warmup + {arguments.duration:g}s measured, "
          f"{arguments.repeats} repeats; connections {arguments.connections} "
          f"(batch {arguments.batch_connections}, open loop up to {arguments.open_connections})")
    print(f"  orders: limit buy/sell at {MID} ± 0.50 (tick 0.01), qty 0.01–1.00, "
          f"{arguments.market_share:.0%} market orders, random user of {arguments.users}, "
          f"{len(run.assets)} assets;\n          batch: {arguments.batch_size} orders/request, one user's bids "
          f"below and asks above a reference in mid ± 0.25, then one market sell and one market buy, "
          f"each connection sending for its own users", flush=True)
    if run.baseline is not None:
        print(f"  baseline: the service as of {arguments.baseline or 'now'} ({run.revision}), same settings, "
              f"its own Ray and data; its single phase runs right after ours in every repeat", flush=True)
    if arguments.pause:
        print(f"  pausing {arguments.pause:g}s: service pid {run.service.process.pid}", flush=True)
        time.sleep(arguments.pause)


# ---- the measured phases ------------------------------------------------------------------------------

def measure(run: Run, name: str, repeat: int, meter: CpuMeter | None = None, **spec_changes) -> dict:
    """Run one phase once; keep and return its summary with the CPU its server used per request."""
    spec = dict(run.base, seed=1000 * repeat + 10 * RUN_NAMES.index(name), **spec_changes)
    spec.setdefault("pool", 400 if spec.get("kind") == "batch" else 20_000)
    kinds = PROFILED_KINDS.get(name, SERVICE_KINDS)
    result, usage = run_generator(spec, meter or run.meter, run.profiler, f"{name}{repeat + 1}", kinds)
    summary = summarize(result, run.arguments.batch_size if spec["kind"] == "batch" else 1)
    summary["cpu"] = usage or {}
    server_kinds = SERVER_KINDS.get(name) or [kind for kind in summary["cpu"] if kind not in NOT_SERVICE]
    summary["server_cores"] = sum(summary["cpu"].get(kind, 0.0) for kind in server_kinds)
    summary["server_us_per_request"] = (summary["server_cores"] * 1e6 / summary["requests_per_s"]
                                        if summary["requests_per_s"] else float("nan"))
    run.runs[name].append(summary)
    return summary


def measure_ceiling(run: Run, repeat: int) -> None:
    """The generator against the raw sink: the most it can send."""
    s = measure(run, "ceiling", repeat, port=run.sink_port, kind="single",
                connections=run.arguments.connections)
    print(fmt_row(f"[{repeat + 1}] generator ceiling (raw sink)", s) + cpu_note(s, False), flush=True)


def measure_noop(run: Run, repeat: int) -> None:
    s = measure(run, "noop", repeat, port=run.noop_port, kind="single", connections=run.arguments.connections)
    print(fmt_row(f"[{repeat + 1}] no-op FastAPI, single", s) + cpu_note(s, False), flush=True)


def measure_peer(run: Run, repeat: int) -> None:
    s = measure(run, "peer", repeat, port=run.peer_port, kind="single", connections=run.arguments.connections,
                target="peer")
    print(fmt_row(f"[{repeat + 1}] matching-engine gateway, single", s, f"  http {s['http']}")
          + cpu_note(s, False), flush=True)


def measure_sequential(run: Run, repeat: int) -> None:
    """One connection, one order at a time, each followed by a health probe: latency at no load.

    The probe (counted apart, GET /health/live; /healthz for the peer) is the floor: uvicorn, the
    loopback and the generator, without the order's path through the actors. The baseline's and
    the peer's sequential phases run right after ours."""
    sequential = {"kind": "single", "connections": 1, "pool": 2_000}
    s = measure(run, "sequential", repeat, port=run.service.port, probe="/health/live", **sequential)
    print(fmt_row(f"[{repeat + 1}] service, sequential", s, f"  health p50 {s.get('probe_p50_ms', 0):.2f} ms")
          + cpu_note(s, True), flush=True)
    if run.baseline is not None:
        s = measure(run, "baseline sequential", repeat, run.baseline_meter, port=run.baseline.port,
                    users=run.baseline_population.users, probe="/health/live", **sequential)
        print(fmt_row(f"[{repeat + 1}] baseline service, sequential", s,
                      f"  health p50 {s.get('probe_p50_ms', 0):.2f} ms") + cpu_note(s, True), flush=True)
    if "peer" in run.phases:
        s = measure(run, "peer sequential", repeat, port=run.peer_port, target="peer", probe="/healthz",
                    **sequential)
        print(fmt_row(f"[{repeat + 1}] matching-engine gateway, sequential", s,
                      f"  health p50 {s.get('probe_p50_ms', 0):.2f} ms") + cpu_note(s, False), flush=True)


def measure_single(run: Run, repeat: int) -> None:
    s = measure(run, "single", repeat, port=run.service.port, kind="single",
                connections=run.arguments.connections)
    print(fmt_row(f"[{repeat + 1}] service, single", s, f"  http {s['http']}") + cpu_note(s, True), flush=True)


def measure_baseline(run: Run, repeat: int) -> None:
    s = measure(run, "baseline", repeat, run.baseline_meter, port=run.baseline.port, kind="single",
                connections=run.arguments.connections, users=run.baseline_population.users)
    print(fmt_row(f"[{repeat + 1}] baseline service, single", s, f"  http {s['http']}")
          + cpu_note(s, True), flush=True)


def measure_batch(run: Run, repeat: int) -> None:
    s = measure(run, "batch", repeat, port=run.service.port, kind="batch",
                connections=run.arguments.batch_connections, partition_users=True)
    print(fmt_row(f"[{repeat + 1}] service, batch x{run.arguments.batch_size}", s,
                  f"  -> {s['orders_per_s']:.0f} orders/s ok, {s['orders_failed']} refused, "
                  f"http {s['http']}") + cpu_note(s, True), flush=True)


def measure_baseline_batch(run: Run, repeat: int) -> None:
    s = measure(run, "baseline batch", repeat, run.baseline_meter, port=run.baseline.port, kind="batch",
                connections=run.arguments.batch_connections, partition_users=True,
                users=run.baseline_population.users)
    print(fmt_row(f"[{repeat + 1}] baseline service, batch x{run.arguments.batch_size}", s,
                  f"  -> {s['orders_per_s']:.0f} orders/s ok, {s['orders_failed']} refused, "
                  f"http {s['http']}") + cpu_note(s, True), flush=True)


def measure_open(run: Run, repeat: int) -> None:
    """The service, then the baseline and the peer, at the same fixed arrival rate."""
    rate, open_loop = run.rate, {"kind": "single", "connections": run.arguments.open_connections,
                                 "mode": "open", "rate": run.rate}
    s = measure(run, "open", repeat, port=run.service.port, **open_loop)
    print(fmt_row(f"[{repeat + 1}] service, open loop {rate:.0f}/s", s, _backlog(s)) + cpu_note(s, True),
          flush=True)
    if run.baseline is not None:
        s = measure(run, "baseline open", repeat, run.baseline_meter, port=run.baseline.port,
                    users=run.baseline_population.users, **open_loop)
        print(fmt_row(f"[{repeat + 1}] baseline service, open loop {rate:.0f}/s", s, _backlog(s))
              + cpu_note(s, True), flush=True)
    if "peer" in run.phases:
        s = measure(run, "peer open", repeat, port=run.peer_port, target="peer", **open_loop)
        print(fmt_row(f"[{repeat + 1}] matching-engine gateway, open loop {rate:.0f}/s", s, _backlog(s))
              + cpu_note(s, False), flush=True)


def _backlog(s: dict) -> str:
    return f"  backlog {s['backlog']} late {s['late']} errors {s['errors']}"


def run_closed_loops(run: Run) -> None:
    """Every closed-loop phase chosen, `--repeats` times, the targets taking turns within each repeat."""
    arguments, phases = run.arguments, run.phases
    print("\nruns", flush=True)
    for repeat in range(arguments.repeats):
        if "ceiling" in phases and repeat < arguments.ceiling_repeats:
            measure_ceiling(run, repeat)
        if "noop" in phases:
            measure_noop(run, repeat)
        if "sequential" in phases:
            measure_sequential(run, repeat)
        if "peer" in phases:
            measure_peer(run, repeat)
        if "single" in phases:
            measure_single(run, repeat)
            # Right after ours, so that both see the same load from the machine's other tenants.
            if run.baseline is not None:
                measure_baseline(run, repeat)
        if "batch" in phases:
            measure_batch(run, repeat)
            if run.baseline is not None:
                measure_baseline_batch(run, repeat)


def run_open_loops(run: Run) -> None:
    """The open-loop phase at `--rate`, or at `--rate-fraction` of the service's median single-order peak."""
    arguments = run.arguments
    if "open" not in run.phases or not (run.runs["single"] or arguments.rate):
        return
    run.rate = arguments.rate or arguments.rate_fraction * median_of(run.runs["single"], "requests_per_s")
    for repeat in range(arguments.repeats):
        measure_open(run, repeat)


# ---- tear-down ----------------------------------------------------------------------------------------

def stop_targets(run: Run) -> None:
    """Stop whatever was started, say how the service stopped, and remove the temp directory unless kept."""
    stop_process(run.noop)
    stop_process(run.sink)
    stop_process(run.peer)
    if run.baseline is not None:
        run.baseline.stop()
    if run.worktree is not None:
        subprocess.run(["git", "-C", str(HERE.parent), "worktree", "remove", "--force", str(run.worktree)],
                       check=False)
    code = run.service.stop()
    if code not in (0, None):
        clean = "Application shutdown complete" in run.service.log_tail()
        print(f"note: the service exited with code {code} after SIGTERM "
              f"(log: {'clean shutdown' if clean else 'see below'})", file=sys.stderr)
        if not clean:
            print(run.service.log_tail(2000), file=sys.stderr)
    if run.arguments.keep:
        print(f"kept {run.root}")
    else:
        shutil.rmtree(run.root, ignore_errors=True)


def main() -> int:
    if "--generator" in sys.argv:
        _generator_main()
        return 0
    arguments = parse_arguments()
    started = time.monotonic()
    run = new_run(arguments)
    try:
        start_targets(run)
        print_conditions(run)
        run_closed_loops(run)
        run_open_loops(run)
        print_report(run.runs, arguments, run.rate)
        if run.profiler:
            run.profiler.report()
        print(f"\ntotal wall time {time.monotonic() - started:.0f}s")
        return 0
    finally:
        stop_targets(run)


if __name__ == "__main__":
    sys.exit(main())
