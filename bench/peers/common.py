"""What every engine adapter shares: arguments, the stream, the figures, the output.

Standard library only: it runs under the project's venv (our engine, in
process) and under each peer's own venv (the `run_<peer>.py` scripts), which
may be a different Python version.

Measurement rules, the same for every engine:

- the stream is generated and translated into the engine's own argument form
  before the clock starts; the translated stream is then frozen out of the
  garbage collector's sight (`gc.freeze`), so that collections during the run
  do not keep re-walking a million input tuples;
- the garbage collector stays enabled during the run (an engine's own garbage
  is its own cost);
- `seconds` is `time.perf_counter()` around the whole loop: the engine calls,
  reading each result (trades and traded quantity) and the per-message timing;
- each message's latency is `time.perf_counter_ns()` immediately around the
  engine call(s) for that message, stored in a preallocated list; p50/p99 come
  from those after the loop.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    # Appended, not inserted: an import path set by the caller (PYTHONPATH) wins.
    sys.path.append(ROOT)

from bench.stream import generate  # noqa: E402


def arg_parser(description: str) -> argparse.ArgumentParser:
    """The options every adapter takes; an adapter may add its own before parsing."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--count", type=int, default=1_000_000, help="messages in the stream")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--users", type=int, default=1000)
    return parser


def load_stream(count: int, seed: int, users: int = 1000) -> list[tuple]:
    return generate(count, seed, users)


def settle_gc() -> None:
    """Collect, then move everything alive into the permanent generation."""
    gc.collect()
    gc.freeze()


def percentile(sorted_values: list[int], q: float) -> int:
    """Nearest-rank percentile of an already sorted list (q in 0..100)."""
    if not sorted_values:
        return 0
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


def result(
    engine: str,
    messages: int,
    seconds: float,
    latencies_ns: list[int],
    trades: int,
    traded_quantity: int,
    notes: str,
    **extra: object,
) -> dict:
    lat = sorted(latencies_ns)
    out = {
        "engine": engine,
        "python": platform.python_version(),
        "messages": messages,
        "seconds": round(seconds, 4),
        "messages_per_s": round(messages / seconds, 1) if seconds > 0 else None,
        "trades": trades,
        "traded_quantity": traded_quantity,
        "p50_us": round(percentile(lat, 50) / 1000.0, 3),
        "p99_us": round(percentile(lat, 99) / 1000.0, 3),
        "notes": notes,
    }
    out.update(extra)
    return out


def emit(record: dict) -> None:
    """The adapter's one line on stdout."""
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
