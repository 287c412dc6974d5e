"""Latency percentiles versus offered load: the service and matching-engine's gateway, one run, PNG plots.

One run starts the real service (`order-service serve`, fsync on, its own local Ray) and matching-engine
0.1.1's own FastAPI gateway (`python -m matching_engine serve`, Python 3.12, fsync on; set up by
`bash bench/peers/setup.sh`), then offers each target single-order `POST`s at a series of fixed arrival rates
with the open-loop generator of `http_bench.py` (latency counted from each request's scheduled time, so
a server that falls behind is charged for the queue it builds). At every rate both targets are measured one
after the other, so they share the machine's conditions. It prints a table, writes it as JSON and CSV, and
draws `latency_vs_load.png` (p50, p90 and p99 against offered load, log scale) into `--out`. Every
request offered in the window is answered (an open loop never drops one), so what a saturated target
shows is latency, not lost throughput.

    .venv/bin/python bench/latency_sweep.py [--rates 250,500,1000,1500,2000,2500,3000,3500]
                                            [--duration 6] [--warmup 2] [--out bench/plots]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.http_load import run_generator  # noqa: E402
from bench.http_report import summarize  # noqa: E402
from bench.load_setup import ServiceProcess, conditions, create_population, free_port  # noqa: E402
from bench.targets import start_peer, stop_process  # noqa: E402

HERE = Path(__file__).resolve().parent
TARGETS = ("service", "matching-engine")


def plot(rows: list[dict], out: Path, title: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"service": "tab:blue", "matching-engine": "tab:orange"}
    styles = {"p50_ms": ":", "p90_ms": "--", "p99_ms": "-"}
    figure, axes = plt.subplots(figsize=(9, 5.5))
    for target in TARGETS:
        mine = [row for row in rows if row["target"] == target]
        for key, style in styles.items():
            axes.plot([row["offered"] for row in mine], [row[key] for row in mine], style, marker="o",
                      markersize=3, color=colours[target], label=f"{target} {key[:-3]}")
    axes.set_yscale("log")
    axes.set_xlabel("offered load (single-order POSTs per second, open loop)")
    axes.set_ylabel("latency from scheduled send (ms, log scale)")
    axes.set_title(title, fontsize=9)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, ncol=2)
    latency = out / "latency_vs_load.png"
    figure.tight_layout()
    figure.savefig(latency, dpi=120)
    plt.close(figure)

    return [latency]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--rates", default="250,500,1000,1500,2000,2500,3000,3500",
                        help="offered loads in requests/s, comma-separated")
    parser.add_argument("--duration", type=float, default=6.0, help="measured seconds per point (default 6)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each point (default 2)")
    parser.add_argument("--connections", type=int, default=256, help="connections available per point (default 256)")
    parser.add_argument("--users", type=int, default=200, help="funded users (default 200)")
    parser.add_argument("--assets", type=int, default=2, help="assets traded (default 2)")
    parser.add_argument("--market-share", type=float, default=0.1, help="share of market orders (default 0.1)")
    parser.add_argument("--out", type=Path, default=HERE / "plots",
                        help="where the table and PNGs go (default bench/plots, committed with bench/README.md)")
    arguments = parser.parse_args()
    rates = [float(rate) for rate in arguments.rates.split(",")]

    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="latency-sweep-"))
    service = ServiceProcess(root / "service", sync=True)
    peer = None
    peer_port = free_port()
    try:
        service.start()
        assets = [f"BN{index}" for index in range(arguments.assets)]
        peer = start_peer(peer_port, root / "peer", assets, root / "peer.log")
        population = asyncio.run(create_population(service.base_url, service.admin_token,
                                                   user_count=arguments.users, assets=assets))
        info = conditions()
        title = (f"{info['cpu']}, {info['cores']} cores; fsync on; {arguments.users} users, {len(assets)} assets; "
                 f"{arguments.warmup:g}s warmup + {arguments.duration:g}s per point")
        print("Latency vs offered load: order service vs matching-engine 0.1.1's gateway, one run")
        print(f"  {title}; python {info['python']}; generator: open loop, "
              f"up to {arguments.connections} connections, latency from each request's scheduled time", flush=True)
        base = {"host": "127.0.0.1", "users": population.users, "assets": population.assets,
                "market_share": arguments.market_share, "batch_size": 1, "warmup": arguments.warmup,
                "duration": arguments.duration, "timeout": 30.0, "mode": "open", "kind": "single",
                "connections": arguments.connections, "pool": 20_000}
        rows: list[dict] = []
        print(f"\n  {'target':<16} {'offered':>8} {'achieved':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
              f"{'max ms':>8}  http")
        for index, rate in enumerate(rates):
            for target in TARGETS:
                spec = dict(base, seed=100 + index, rate=rate,
                            port=service.port if target == "service" else peer_port,
                            target="peer" if target == "matching-engine" else "service")
                result, _ = run_generator(spec)
                s = summarize(result)
                row = {"target": target, "offered": rate, "achieved": s["requests_per_s"],
                       "p50_ms": s["p50_ms"], "p90_ms": s["p90_ms"], "p99_ms": s["p99_ms"], "max_ms": s["max_ms"],
                       "requests": s["requests"], "http": s["http"], "errors": s["errors"],
                       "backlog": s.get("backlog", 0)}
                rows.append(row)
                print(f"  {target:<16} {rate:8.0f} {row['achieved']:9.0f} {row['p50_ms']:8.2f} {row['p90_ms']:8.2f} "
                      f"{row['p99_ms']:8.2f} {row['max_ms']:8.1f}  {row['http']}"
                      + (f" errors {row['errors']}" if row["errors"] else "")
                      + (f" backlog {row['backlog']}" if row["backlog"] else ""), flush=True)
        arguments.out.mkdir(parents=True, exist_ok=True)
        (arguments.out / "sweep.json").write_text(json.dumps({"conditions": info, "title": title, "rows": rows},
                                                             indent=2))
        with open(arguments.out / "sweep.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=[key for key in rows[0] if key != "http"],
                                    extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        for path in plot(rows, arguments.out, title):
            print(f"  wrote {path}")
        print(f"\ntotal wall time {time.monotonic() - started:.0f}s")
        return 0
    finally:
        stop_process(peer)
        service.stop()
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
