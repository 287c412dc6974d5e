"""The engine benchmark's second stream: the plain one with 5% stops and 5% amends (bench/stream.py
`generate_with_stops`), through our book alone; and the plain stream through an older revision's
engine, in a subprocess, for a paired before/after figure.

Timed like `engine_bench.run_ours`: the stream translated before the clock, `perf_counter` around
the whole loop, `perf_counter_ns` around each message's call. Trades count every trade a message
caused, a stop's cascade included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO

import common  # noqa: E402  (bench/peers/common.py, on the path engine_bench.py sets)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
STOPS = "ours, 5% stops + 5% amends"


def run_ours_with_stops(stream: list[tuple]) -> dict:
    """Run the stream with stops and amends through one fresh book; return `common.result`'s record."""
    from engine import AssetSpec, OrderBook, RejectReason, TradeExecuted

    sides = ("buy", "sell")
    prepared = []
    for m in stream:  # translate before the clock
        k = m[0]
        if k == "L":
            prepared.append(("L", m[1], f"u{m[2]}", sides[m[3]], m[4], m[5]))
        elif k == "M":
            prepared.append(("M", m[1], f"u{m[2]}", sides[m[3]], m[4]))
        elif k == "S":
            _, order_id, user, side, kind, stop_price, price, quantity = m
            prepared.append(("S", order_id, f"u{user}", sides[side], kind, stop_price, quantity, price,
                             "ioc" if price is None else "gtc"))
        elif k == "A":
            prepared.append(("A", m[1], f"u{m[2]}", m[3], m[4]))
        else:
            prepared.append(("C", m[1]))
    book = OrderBook(AssetSpec.create("BENCH", "0.01", "1"))
    submit_limit, submit_market, submit_stop = book.submit_limit, book.submit_market, book.submit_stop
    cancel, amend = book.cancel, book.amend
    pc = time.perf_counter_ns
    n = len(prepared)
    lat = [0] * n
    trades = quantity = rejected = refused_amends = triggered = 0
    amend_id = 0
    common.settle_gc()
    i = 0
    t0 = time.perf_counter()
    for m in prepared:
        k = m[0]
        s = pc()
        if k == "L":
            r = submit_limit(m[1], m[2], m[3], m[4], m[5], "gtc", False)
        elif k == "M":
            r = submit_market(m[1], m[2], m[3], m[4])
        elif k == "C":
            cancel(m[1])
            lat[i] = pc() - s
            i += 1
            continue
        elif k == "S":
            r = submit_stop(m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8])
        else:
            amend_id += 1
            events = amend(amend_id, m[1], m[2], m[3], m[4])
            lat[i] = pc() - s
            i += 1
            for event in events:
                kind = type(event)
                if kind is TradeExecuted:
                    trades += 1
                    quantity += event.quantity
                elif kind.__name__ == "AmendRefused":
                    refused_amends += 1
                elif kind.__name__ == "StopTriggered":
                    triggered += 1
            continue
        lat[i] = pc() - s
        i += 1
        if isinstance(r, RejectReason):
            rejected += 1
            continue
        for t in r[4][:-1]:
            trades += 1
            quantity += t.quantity
        for event in r[5]:
            kind = type(event)
            if kind is TradeExecuted:
                trades += 1
                quantity += event.quantity
            elif kind.__name__ == "StopTriggered":
                triggered += 1
    seconds = time.perf_counter() - t0
    return common.result(STOPS, n, seconds, lat, trades, quantity,
                         "the plain stream with stops (limit and market sells, both kinds) and amends "
                         "(moves and shrinks) mixed in; trades include cascades",
                         best_bid=book.best_bid(), best_ask=book.best_ask(),
                         resting_orders=book.open_order_count(), waiting_stops=len(book.stops),
                         stops_triggered=triggered, amends_refused=refused_amends, rejected=rejected)


def extract_engine(revision: str) -> str:
    """Write `engine/` as of a git revision into a new temporary directory; return the directory."""
    archive = subprocess.run(["git", "archive", "--format=tar", revision, "engine"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    directory = tempfile.mkdtemp(prefix="engine-baseline-")
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    return directory


def run_plain_in_subprocess(engine_dir: str | None, count: int, seed: int, users: int) -> dict:
    """Run the plain stream through `run_ours` in a fresh process whose `engine` is the one in
    `engine_dir` (None: this tree's); return its record."""
    env = dict(os.environ)
    if engine_dir is not None:
        env["PYTHONPATH"] = engine_dir + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    command = [sys.executable, os.path.join(HERE, "engine_bench.py"), "--json-line", "--count", str(count),
               "--seed", str(seed), "--users", str(users)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
