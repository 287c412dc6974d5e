"""Soak: the real service under steady locust traffic for minutes; errors, latency, throughput and memory.

    make soak                                   # 5 minutes (SOAK_TIME=90s make soak for a short one)
    .venv/bin/python bench/soak.py [--duration 5m] [--users 50] [--spawn-rate 10] [--interval 15]

One run:
1. starts `order-service serve` itself on a free port and a temp data dir, fsync on, its own
   local Ray (`bench/load_setup.ServiceProcess`), and creates the traded assets over the admin API
   (by default two whose books live in different book actors);
2. runs locust headless as a subprocess on `bench/locustfile.py` for `--duration`: every simulated
   trader creates its own user and API key and is funded through the admin API, then places limit
   and market orders, cancels, and reads orders, portfolio, balances and the book, with a pause of
   0.05–0.5 s between tasks (steady traffic, not a peak: the rate is set by the users and their
   pauses); locust writes its statistics as CSV with the full history;
3. samples the memory of every process of the service (gateway, each actor by its journal, raylet,
   gcs_server and Ray's other processes; `bench/service_memory.py`) before the load, then every
   `--interval` seconds, and when the load has stopped;
4. stops the service with SIGTERM, counts what its journals hold, and runs
   `order-service verify --data-dir` on the data (checksums, contiguity, the invariants of DESIGN.md).

It prints the conditions, requests/s per interval, latency percentiles overall and per endpoint,
the memory of each process at the start, after warm-up and at the end with its growth, and writes
everything (and locust's CSVs, the service log) to `bench/results/soak/<UTC time>/` (git-ignored).

The run fails (exit 1) if any request failed, the service did not stop cleanly, `verify` found a
problem, or memory grew past the bound (`--max-growth-mib`, `--max-growth-percent`,
`--max-bytes-per-order`; see `memory_verdicts` for what they mean and why).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.journal_counts import count_events  # noqa: E402
from bench.load_setup import ServiceProcess, conditions, create_population  # noqa: E402
from bench.locust_results import (  # noqa: E402
    ORDER_ENDPOINTS, count_at, endpoint_stats, history_counts, locust_refusals, read_csv, throughput_intervals,
)
from bench.machine import load_average  # noqa: E402
from bench.placement import assets_on_distinct_books  # noqa: E402
from bench.revision import source_revision  # noqa: E402
from bench.service_memory import ServiceProcesses  # noqa: E402
from bench.soak_report import print_report  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "soak"
STATEFUL = ("shard-", "book-")
KIB = 1024
MIB = 1024 * 1024


def parse_duration(text: str) -> float:
    """Seconds from '300', '90s', '5m' or '1m30s'."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not parts or not any(parts.groups()):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 300, 90s, 5m, 1m30s)")
    hours, minutes, seconds = (int(group or 0) for group in parts.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


# ---- locust ------------------------------------------------------------------------------------

def run_locust(service: ServiceProcess, assets: list[str], arguments, out: Path,
               on_tick) -> int:
    """Run locust headless for the soak's duration, calling `on_tick(seconds since start)` every interval."""
    env = dict(os.environ, ORDER_SERVICE_ADMIN_TOKEN=service.admin_token, LOAD_ASSETS=",".join(assets))
    command = [str(Path(sys.executable).parent / "locust"), "-f", str(HERE / "locustfile.py"), "--headless",
               "--host", service.base_url, "--users", str(arguments.users), "--spawn-rate",
               str(arguments.spawn_rate), "--run-time", f"{int(arguments.duration)}s", "--stop-timeout", "10",
               "--csv", str(out / "locust"), "--csv-full-history", "--only-summary"]
    with open(out / "locust.log", "wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True)
    started = time.monotonic()
    next_tick = started + arguments.interval
    try:
        while process.poll() is None:
            time.sleep(max(0.0, min(next_tick - time.monotonic(), 1.0)))
            if time.monotonic() >= next_tick and process.poll() is None:
                on_tick(time.monotonic() - started)
                next_tick += arguments.interval
        return process.returncode
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# ---- memory -------------------------------------------------------------------------------------

def memory_verdicts(samples: list[dict], orders_in_window: int, arguments) -> tuple[list[dict], dict, bool]:
    """Compare each process's memory after warm-up (samples[1]) with its memory at the end (samples[-1]).

    The bound is on RssAnon, the private memory a leak grows. Resident size also counts mapped
    journal pages (RssFile), which grow with the journal as LMDB reads it and which the kernel may
    drop at will, and Ray's shared object store (RssShmem); both are printed, neither is bounded.
    - A process that keeps no growing state once the traders exist (gateway, registry, Ray's own
      processes) may grow by at most `--max-growth-mib` MiB or `--max-growth-percent` % of its
      size, whichever is larger. Allocator noise and caches that fill once stay below that (the
      gateway levels off ~3 MiB above its warm-up size); at ~150 requests/s a leak of ~450 bytes
      per request breaks it within a five-minute run, a smaller one in a longer run.
    - Shards keep every order and transaction for ever, books keep resting orders: they grow with
      the orders placed. Their growth after warm-up, summed per kind and divided by the orders
      placed in that window, may be at most `--max-bytes-per-order`: about twice the ~1.1 KB an
      order with its fills takes in a shard rebuilt from the journal (the soak prints that figure),
      so a leak of roughly an order's size again per order breaks it.
    A process that appeared or vanished between the two samples (e.g. a restarted actor) fails.
    """
    begin, warm, end = (sample["memory"] for sample in samples)
    rows, verdict_ok = [], True
    stateful_growth = {"shard": 0, "book": 0}

    def kib(entry: dict | None, field: str) -> int | None:
        return entry[field] if entry else None

    for role in list(end) + [role for role in warm if role not in end]:
        first, last = warm.get(role), end.get(role)
        row = {"role": role, "pid": (last or first)["pid"],
               "start_rss_kib": kib(begin.get(role), "VmRSS"), "start_anon_kib": kib(begin.get(role), "RssAnon"),
               "warm_rss_kib": kib(first, "VmRSS"), "warm_anon_kib": kib(first, "RssAnon"),
               "end_rss_kib": kib(last, "VmRSS"), "end_anon_kib": kib(last, "RssAnon"),
               "end_file_kib": kib(last, "RssFile"), "peak_rss_kib": kib(last, "VmHWM")}
        if first is None or last is None or first["pid"] != last["pid"]:
            row.update(growth_anon_kib=None, bound="process appeared or vanished", ok=False)
            verdict_ok = False
        elif role.startswith(STATEFUL):
            row.update(growth_anon_kib=last["RssAnon"] - first["RssAnon"], bound="per order, with its kind", ok=None)
            stateful_growth[role.split("-")[0]] += row["growth_anon_kib"] * KIB
        else:
            growth = last["RssAnon"] - first["RssAnon"]
            allowed = max(arguments.max_growth_mib * MIB,
                          first["RssAnon"] * KIB * arguments.max_growth_percent / 100)
            row.update(growth_anon_kib=growth, bound=f"<= {allowed / MIB:.1f} MiB", ok=growth * KIB <= allowed)
            verdict_ok &= row["ok"]
        rows.append(row)
    per_order = {}
    for kind, growth in stateful_growth.items():
        value = growth / orders_in_window if orders_in_window else float("nan")
        ok = orders_in_window > 0 and value <= arguments.max_bytes_per_order
        per_order[kind] = {"growth_bytes": growth, "orders": orders_in_window, "bytes_per_order": value, "ok": ok}
        verdict_ok &= ok
    for row in rows:
        if row["ok"] is None:
            row["ok"] = per_order[row["role"].split("-")[0]]["ok"]
    return rows, per_order, verdict_ok


# ---- the service's own record --------------------------------------------------------------------

def ray_log_dir(memory: dict) -> Path | None:
    """Ray's session log directory of this service, from its gcs_server's command line."""
    entry = memory.get("gcs_server")
    if not entry:
        return None
    try:
        arguments = psutil.Process(entry["pid"]).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    for argument in arguments:
        if argument.startswith("--log_dir="):
            return Path(argument.split("=", 1)[1])
    return None


def problems_in_logs(service_log: Path, ray_logs: Path | None) -> dict:
    """Lines of the gateway's log, the actors' stderr and the raylet's log that report a problem."""
    python_problem = re.compile(r"Traceback|\b(WARNING|ERROR|CRITICAL)\b")
    # glog levels Error and Fatal; its Warnings are mostly the noise of a shutdown.
    raylet_problem = re.compile(r"^\[[^\]]* [EF] \d+ \d+\]")
    found: dict[str, list[str]] = {}
    files = [(service_log, python_problem)]
    if ray_logs:
        files += [(path, python_problem) for path in sorted(ray_logs.glob("worker-*.err"))]
        files += [(ray_logs / name, raylet_problem) for name in ("raylet.out", "gcs_server.out")]
    for path, pattern in files:
        try:
            lines = [line for line in path.read_text(errors="replace").splitlines() if pattern.search(line)]
        except OSError:
            continue
        if lines:
            found[path.name] = lines[:20] + ([f"... {len(lines) - 20} more"] if len(lines) > 20 else [])
    return found


def leftover_processes(watcher: ServiceProcesses, patience: float = 15.0) -> list[str]:
    """The service's processes still alive `patience` seconds after it stopped; they are killed."""
    deadline = time.monotonic() + patience
    while (left := watcher.roles()) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in left.values():
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass
    return [f"{role} ({pid})" for role, pid in left.items()]


def state_per_order(data_dir: Path) -> dict:
    """What the shards' state holds per order when rebuilt from the journals (a fresh process, no Ray)."""
    child = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--state-per-order", str(data_dir)],
                           capture_output=True, text=True)
    try:
        return json.loads(child.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": child.stderr[-500:]}


def _state_per_order_main(data_dir: Path) -> None:
    import gc

    from actors.offline import layout_config
    from actors.shard_actor import AccountShardActor
    from bench.processes import status_memory_kib

    config = layout_config(data_dir)
    growth = orders = transactions = 0
    for index in range(config.shard_count):
        gc.collect()
        before = status_memory_kib(os.getpid())["RssAnon"]
        shard = AccountShardActor(config, index)
        gc.collect()
        growth += (status_memory_kib(os.getpid())["RssAnon"] - before) * KIB
        orders += len(shard.accounts.orders)
        transactions += sum(len(entries) for per_user in shard.accounts.transactions.values()
                            for entries in per_user.values())
        shard.store.close()
    print(json.dumps({"orders": orders, "transactions": transactions, "growth_bytes": growth,
                      "bytes_per_order": growth / orders if orders else None}))


def run_verify(data_dir: Path) -> dict:
    command = [str(Path(sys.executable).parent / "order-service"), "verify", "--data-dir", str(data_dir)]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.monotonic() - started
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        report = None
    return {"exit_code": result.returncode, "seconds": seconds, "report": report,
            "verdict": (result.stderr.strip().splitlines() or [""])[-1]}


# ---- the run --------------------------------------------------------------------------------------

def main() -> int:
    if "--state-per-order" in sys.argv:
        _state_per_order_main(Path(sys.argv[sys.argv.index("--state-per-order") + 1]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--duration", type=parse_duration, default=parse_duration(os.environ.get("SOAK_TIME", "5m")),
                        help="how long the load runs: 300, 90s, 5m (default $SOAK_TIME or 5m)")
    parser.add_argument("--users", type=int, default=int(os.environ.get("SOAK_USERS", "50")),
                        help="locust users, i.e. traders (default $SOAK_USERS or 50)")
    parser.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second (default 10)")
    parser.add_argument("--interval", type=float, default=15.0, help="seconds per throughput and memory sample")
    parser.add_argument("--warmup", type=parse_duration, default=None,
                        help="seconds of load before the memory baseline (default: a third of the run, at most 60)")
    parser.add_argument("--assets", default=None,
                        help="traded assets, comma-separated (default: two that land on different book actors)")
    parser.add_argument("--max-growth-mib", type=float, default=16.0,
                        help="growth allowed to a process without growing state, MiB (default 16)")
    parser.add_argument("--max-growth-percent", type=float, default=10.0,
                        help="... or this share of its size after warm-up, if larger (default 10)")
    parser.add_argument("--max-bytes-per-order", type=float, default=2048.0,
                        help="growth allowed to shards, and to books, per order placed (default 2048)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the run's folder goes")
    parser.add_argument("--keep", action="store_true", help="keep the service's temp directory (data, logs)")
    arguments = parser.parse_args()
    warmup = arguments.warmup if arguments.warmup is not None else min(60.0, arguments.duration / 3)
    assets = ([asset.strip() for asset in arguments.assets.split(",") if asset.strip()] if arguments.assets
              else assets_on_distinct_books("SOAK", 2))

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = arguments.results / stamp
    out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="soak-", dir=os.environ.get("BENCH_DIR", "/tmp")))
    service = ServiceProcess(root, sync=True)
    load_before = load_average()
    revision = source_revision()
    print(f"soak: starting the service in {root} (fsync on); results to {out}", flush=True)
    samples: list[dict] = []
    try:
        ready_seconds = service.start()
        watcher = ServiceProcesses(service.data_dir, service.process.pid)
        asyncio.run(create_population(service.base_url, service.admin_token, user_count=0, assets=assets))
        samples.append({"t_s": 0.0, "wall": time.time(), "memory": watcher.sample()})
        ray_logs = ray_log_dir(samples[0]["memory"])
        load_start = time.time()
        print(f"soak: service ready in {ready_seconds:.1f} s; locust {arguments.users} users for "
              f"{arguments.duration:.0f} s", flush=True)

        def on_tick(seconds: float) -> None:
            samples.append({"t_s": seconds, "wall": time.time(), "memory": watcher.sample()})
            memory = samples[-1]["memory"]
            print(f"  {seconds:5.0f} s  anon MiB: " + ", ".join(
                f"{role} {entry['RssAnon'] / 1024:.0f}" for role, entry in memory.items()
                if role in ("gateway", "gcs_server") or role.startswith(STATEFUL)), flush=True)

        locust_exit = run_locust(service, assets, arguments, out, on_tick)
        samples.append({"t_s": time.time() - load_start, "wall": time.time(), "memory": watcher.sample()})
    finally:
        stop_exit = service.stop()
    leftover = leftover_processes(watcher)
    load_after = load_average()

    series = history_counts(out / "locust")
    endpoints = endpoint_stats(out / "locust")
    warm_index = next((index for index, sample in enumerate(samples) if index and sample["t_s"] >= warmup),
                      len(samples) - 1)
    window = [samples[0], samples[warm_index], samples[-1]]
    orders_total = sum(row["requests"] for row in endpoints if row["name"] in ORDER_ENDPOINTS)
    orders_at_warm = sum(count_at(series.get(name, []), samples[warm_index]["wall"]) for name in ORDER_ENDPOINTS)
    process_rows, per_order, memory_ok = memory_verdicts(window, orders_total - orders_at_warm, arguments)
    total = {f"{label}_rss_kib": sum(entry["VmRSS"] for entry in sample["memory"].values())
             for label, sample in zip(("start", "warm", "end"), window)}
    timeline = [{"t_s": sample["t_s"],
                 "gateway": sample["memory"].get("gateway", {}).get("RssAnon", 0) / 1024,
                 "shards": sum(v["RssAnon"] for k, v in sample["memory"].items() if k.startswith("shard-")) / 1024,
                 "books": sum(v["RssAnon"] for k, v in sample["memory"].items() if k.startswith("book-")) / 1024}
                for sample in samples]

    journal = count_events(service.data_dir)
    verify = run_verify(service.data_dir)
    replayed = state_per_order(service.data_dir)
    failures = read_csv(out / "locust_failures.csv")
    exceptions = read_csv(out / "locust_exceptions.csv")
    failed_requests = next((row["failures"] for row in endpoints if row["name"] == "all requests"), 0)
    errors = {"failed_requests": failed_requests, "exceptions": len(exceptions), "locust_exit_code": locust_exit,
              "refusals": locust_refusals(out / "locust.log"),
              "failure_kinds": [f"{row.get('Method')} {row.get('Name')}: {row.get('Error')} x{row.get('Occurrences')}"
                                for row in failures]}
    checks = {"no failed request": failed_requests == 0 and not exceptions and locust_exit == 0,
              "requests were made": orders_total > 0,
              "clean stop": stop_exit == 0 and not leftover,
              "verify holds": verify["exit_code"] == 0,
              "memory within bound": memory_ok}
    shutil.copy(service.log_path, out / "service.log")
    result = {
        "conditions": {**conditions(), "load_before": load_before, "load_after": load_after,
                       "revision": revision,
                       "shards": len([r for r in samples[0]["memory"] if r.startswith("shard-")]),
                       "book_actors": len([r for r in samples[0]["memory"] if r.startswith("book-")]),
                       "sync": service.sync, "ready_seconds": ready_seconds, "users": arguments.users,
                       "spawn_rate": arguments.spawn_rate, "duration_s": arguments.duration, "assets": assets,
                       "interval_s": arguments.interval, "warmup_s": samples[warm_index]["t_s"],
                       "data_dir": str(service.data_dir)},
        "throughput": throughput_intervals(series, arguments.interval, load_start),
        "endpoints": endpoints,
        "errors": errors,
        "memory": {"processes": process_rows, "per_order": per_order, "total": total, "timeline": timeline,
                   "bounds": {"growth_mib": arguments.max_growth_mib, "growth_percent": arguments.max_growth_percent,
                              "bytes_per_order": arguments.max_bytes_per_order, "measure": "RssAnon"},
                   "replayed_state": replayed, "samples": samples},
        "journal": journal,
        "verify": verify,
        "stop_exit_code": stop_exit,
        "leftover_processes": leftover,
        "log_problems": problems_in_logs(service.log_path, ray_logs),
        "failed_checks": [name for name, ok in checks.items() if not ok],
        "passed": all(checks.values()),
        "output_dir": str(out),
    }
    (out / "soak.json").write_text(json.dumps(result, indent=2, default=str))
    with open(out / "memory.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["t_s", "role", "pid", "VmRSS_kib", "RssAnon_kib", "RssFile_kib", "RssShmem_kib", "VmHWM_kib"])
        for sample in samples:
            for role, entry in sample["memory"].items():
                writer.writerow([round(sample["t_s"], 1), role, entry["pid"], entry["VmRSS"], entry["RssAnon"],
                                 entry["RssFile"], entry["RssShmem"], entry["VmHWM"]])
    print_report(result)
    if arguments.keep:
        print(f"kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
