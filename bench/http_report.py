"""What `http_bench.py` makes of its phases: a summary per phase, one line each, and the medians at the end.

A phase's summary (`summarize`, from the generator's tally) carries its throughput and latency
percentiles, the HTTP statuses and order outcomes it saw, and `cpu`: cores used per kind of process in
its measured window. The medians
compare the targets measured in the same run: the service against the no-op app, matching-engine's
gateway and the baseline revision, with the targets of the issue (MET / MISSED).
"""

from __future__ import annotations

import os
import statistics
from argparse import Namespace

from bench.machine import load_average

# Kinds of process in a phase's CPU figures that are not the service's own.
NOT_SERVICE = {"generator", "no-op app", "raw sink", "peer gateway", "machine", "seconds"}


def percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summarize(result: dict, orders_per_request: int = 1) -> dict:
    """A phase's throughput, latency percentiles and outcomes from the generator's tally."""
    latencies = result["latencies"]
    count = len(latencies)
    summary = {"requests_per_s": count / result["duration"],
               "p50_ms": percentile(latencies, 0.50) * 1e3, "p90_ms": percentile(latencies, 0.90) * 1e3,
               "p99_ms": percentile(latencies, 0.99) * 1e3, "max_ms": (latencies[-1] * 1e3 if latencies else 0),
               "requests": count, "http": result["http"], "outcomes": result["outcomes"],
               "errors": result["errors"],
               "generator_cpu_share": result["generator_cpu"] / max(result["wall"], 1e-9)}
    summary["orders_per_s"] = (result["orders_ok"] / result["duration"] if orders_per_request > 1
                               else summary["requests_per_s"])
    summary["orders_ok"] = result["orders_ok"]
    summary["orders_failed"] = result["orders_failed"]
    probes = result.get("probe_latencies") or []
    if probes:
        summary["probe_p50_ms"] = percentile(probes, 0.50) * 1e3
        summary["probe_p99_ms"] = percentile(probes, 0.99) * 1e3
    if result.get("scheduled") is not None:
        summary["scheduled"] = result["scheduled"]
        summary["backlog"] = result["backlog"]
        summary["late"] = result["late"]
    return summary


def fmt_row(name: str, s: dict, extra: str = "") -> str:
    return (f"  {name:<34} {s['requests_per_s']:>9.0f} req/s  p50 {s['p50_ms']:6.2f} ms  "
            f"p90 {s['p90_ms']:6.2f} ms  p99 {s['p99_ms']:6.2f} ms  max {s['max_ms']:7.1f} ms  "
            f"n={s['requests']}{extra}")


def cpu_note(s: dict, service_phase: bool) -> str:
    """The phase's CPU use: the server's (per kind of service process), the generator's, the machine's."""
    cpu = s["cpu"]
    parts = ""
    if service_phase:
        parts = " (" + ", ".join(f"{kind} {cores:.2f}" for kind, cores in cpu.items()
                                 if kind not in NOT_SERVICE and cores >= 0.02) + ")"
    return (f"\n      cpu cores: server {s['server_cores']:.2f}{parts}; generator {cpu.get('generator', 0):.2f}; "
            f"whole machine {cpu.get('machine', 0):.2f}/{os.cpu_count()} -> server "
            f"{s['server_us_per_request']:.0f} cpu-us/request")


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def _latencies(s: list[dict]) -> str:
    return (f"p50 {median_of(s, 'p50_ms'):.2f} ms  p90 {median_of(s, 'p90_ms'):.2f} ms  "
            f"p99 {median_of(s, 'p99_ms'):.2f} ms")


def _closed_loop_line(label: str, s: list[dict]) -> str:
    return (f"  {label} {median_of(s, 'requests_per_s'):9.0f} req/s  {_latencies(s)}  "
            f"server {median_of(s, 'server_us_per_request'):.0f} cpu-us/req")


def print_report(runs: dict[str, list[dict]], arguments: Namespace, rate: float | None) -> None:
    """Print the medians of every phase's repeats, the ratios between targets, outcomes and machine load."""
    print(f"\nmedians of {arguments.repeats} repeats")
    _print_calibration(runs)
    _print_sequential(runs, arguments)
    _print_single_orders(runs, arguments)
    _print_batches(runs, arguments)
    _print_open_loops(runs, arguments, rate)
    _print_outcomes(runs)
    _print_machine(runs)


def _print_calibration(runs: dict[str, list[dict]]) -> None:
    """The generator's ceiling and the no-op app: what the load generator and bare FastAPI can do."""
    if runs["ceiling"]:
        generator = statistics.median(r["cpu"].get("generator", 0) for r in runs["ceiling"])
        print(f"  generator ceiling (raw sink):      {median_of(runs['ceiling'], 'requests_per_s'):9.0f} req/s  "
              f"(generator {generator:.2f} cores)")
    if runs["noop"]:
        s = runs["noop"]
        print(_closed_loop_line("no-op FastAPI, single POST:       ", s))
        if runs["ceiling"]:
            share = median_of(s, "requests_per_s") / median_of(runs["ceiling"], "requests_per_s")
            print(f"    no-op / generator ceiling = {share:.2f} "
                  f"({'the generator is not the limit' if share < 0.7 else 'the generator may limit the no-op'})")


def _print_sequential(runs: dict[str, list[dict]], arguments: Namespace) -> None:
    """One keep-alive connection, orders one after another, with the health probe's p50 as the floor."""
    for name, label in (("sequential", "service"), ("baseline sequential", f"baseline ({baseline_label(arguments)})"),
                        ("peer sequential", "matching-engine gateway")):
        s = runs.get(name)
        if not s:
            continue
        line = (f"  {label}, sequential orders on 1 connection: {median_of(s, 'requests_per_s'):6.0f} req/s  "
                f"{_latencies(s)}; its health probe p50 {median_of(s, 'probe_p50_ms'):.2f} ms (the floor)")
        if name == "sequential":
            met = median_of(s, "p50_ms") <= 5 and median_of(s, "p99_ms") <= 12
            line += f"   (target p50 <= 5 ms, p99 <= 12 ms: {'MET' if met else 'MISSED'})"
        print(line)
    if runs.get("sequential") and runs.get("baseline sequential"):
        paired = ", ".join(f"{ours['p50_ms']:.2f}/{theirs['p50_ms']:.2f}"
                           for ours, theirs in zip(runs["sequential"], runs["baseline sequential"]))
        print(f"    sequential p50 service/baseline per repeat (ms): {paired}")


def _print_single_orders(runs: dict[str, list[dict]], arguments: Namespace) -> None:
    """Single-order peaks of matching-engine's gateway, the service and the baseline, and their ratios."""
    if runs["peer"]:
        s = runs["peer"]
        print(_closed_loop_line("matching-engine gateway, single:  ", s))
        if runs["noop"]:
            print(f"    matching-engine / no-op = "
                  f"{median_of(s, 'requests_per_s') / median_of(runs['noop'], 'requests_per_s'):.2f}x")
    if runs["single"]:
        s = runs["single"]
        print(_closed_loop_line("service, single POST:             ", s))
        if runs["noop"]:
            ratio = median_of(s, "requests_per_s") / median_of(runs["noop"], "requests_per_s")
            print(f"    service / no-op = {ratio:.2f}x")
        if runs["peer"]:
            ratio = median_of(s, "requests_per_s") / median_of(runs["peer"], "requests_per_s")
            paired = ", ".join(f"{ours['requests_per_s'] / theirs['requests_per_s']:.2f}"
                               for ours, theirs in zip(s, runs["peer"]))
            print(f"    service / matching-engine gateway = {ratio:.2f}x (per repeat: {paired})   "
                  f"(target >= 1.2x: {'MET' if ratio >= 1.2 else 'MISSED'})")
    if runs["baseline"]:
        s = runs["baseline"]
        print(f"  baseline ({baseline_label(arguments)}), single POST: "
              f"{median_of(s, 'requests_per_s'):6.0f} req/s  "
              f"{_latencies(s)}  server {median_of(s, 'server_us_per_request'):.0f} cpu-us/req")
        if runs["single"]:
            paired = ", ".join(f"{ours['requests_per_s'] / theirs['requests_per_s']:.2f}"
                               for ours, theirs in zip(runs["single"], s))
            print(f"    service / baseline = "
                  f"{median_of(runs['single'], 'requests_per_s') / median_of(s, 'requests_per_s'):.2f}x "
                  f"(per repeat: {paired})")


def _print_batches(runs: dict[str, list[dict]], arguments: Namespace) -> None:
    if not runs["batch"]:
        return
    s = runs["batch"]
    orders = median_of(s, "orders_per_s")
    print(f"  service, batch of {arguments.batch_size}:             {orders:9.0f} orders/s accepted "
          f"({median_of(s, 'requests_per_s'):.0f} req/s, request p50 {median_of(s, 'p50_ms'):.1f} ms "
          f"p99 {median_of(s, 'p99_ms'):.1f} ms, server "
          f"{median_of(s, 'server_us_per_request') / arguments.batch_size:.0f} cpu-us/order)"
          f"   (target >= 25000: {'MET' if orders >= 25000 else 'MISSED'})")
    if runs.get("baseline batch"):
        theirs = runs["baseline batch"]
        paired = ", ".join(f"{ours['orders_per_s'] / other['orders_per_s']:.2f}" for ours, other in zip(s, theirs))
        print(f"  baseline ({baseline_label(arguments)}), batch of {arguments.batch_size}: "
              f"{median_of(theirs, 'orders_per_s'):9.0f} orders/s accepted; service / baseline = "
              f"{orders / median_of(theirs, 'orders_per_s'):.2f}x (per repeat: {paired})")


def _print_open_loops(runs: dict[str, list[dict]], arguments: Namespace, rate: float | None) -> None:
    """Latency at the fixed arrival rate: the service against its target, then the baseline and the peer."""
    if runs["open"]:
        s = runs["open"]
        p99 = median_of(s, "p99_ms")
        how = "fixed" if arguments.rate else f"{arguments.rate_fraction:g} x peak"
        print(f"  service, open loop at {rate:.0f} req/s ({how}): achieved "
              f"{median_of(s, 'requests_per_s'):.0f} req/s  p50 {median_of(s, 'p50_ms'):.2f} ms  "
              f"p90 {median_of(s, 'p90_ms'):.2f} ms  p99 {p99:.2f} ms   "
              f"(target p99 <= 25 ms: {'MET' if p99 <= 25 else 'MISSED'})")
    for name, label in (("baseline open", f"baseline ({baseline_label(arguments)})"),
                        ("peer open", "matching-engine gateway")):
        if runs[name]:
            s = runs[name]
            print(f"  {label}, open loop at {rate:.0f} req/s: achieved "
                  f"{median_of(s, 'requests_per_s'):.0f} req/s  {_latencies(s)}")


def _print_outcomes(runs: dict[str, list[dict]]) -> None:
    """How the orders of each phase ended (accepted, filled, refused ...), summed over its repeats."""
    for name in ("peer", "sequential", "single", "batch", "open"):
        outcomes: dict[str, int] = {}
        for run in runs[name]:
            for word, count in run["outcomes"].items():
                outcomes[word] = outcomes.get(word, 0) + count
        if outcomes:
            total = sum(outcomes.values())
            print(f"  order outcomes, {name}: " + ", ".join(
                f"{word} {count / total:.1%}" for word, count in sorted(outcomes.items(), key=lambda i: -i[1])))


def _print_machine(runs: dict[str, list[dict]]) -> None:
    busy = [run["cpu"].get("machine", 0) for name in runs for run in runs[name] if run["cpu"]]
    if busy:
        # A list of strings, as earlier runs printed the fields of /proc/loadavg.
        print(f"  whole machine busy during the measured windows: median {statistics.median(busy):.2f} of "
              f"{os.cpu_count()} cores (every process on the host, ours and others'); "
              f"load average at the end {load_average().split()}")


def baseline_label(arguments) -> str:
    """What the baseline is: an older revision, N gateway processes, the rate limits off, or the metrics off."""
    if arguments.baseline:
        return arguments.baseline
    if getattr(arguments, "workers", None):
        return f"{arguments.workers} gateway processes"
    if getattr(arguments, "limits_on", None):
        return "rate limits off"
    return "metrics off"
