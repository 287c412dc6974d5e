"""Run the benchmark stream through `lightmatchingengine` (PyPI, pure Python).

    bench/.peers/venv311/bin/python bench/peers/run_lightmatchingengine.py --count 1000000 --seed 42

Prints one JSON line (see `common.py`). Mapping of the stream onto its API
(`LightMatchingEngine.add_order(instmt, price, qty, side)` and
`cancel_order(order_id, instmt)`, one instrument "BENCH"):

- limit ("L"): `add_order("BENCH", price, qty, side)`; side 0/1 -> Side.BUY (1) / Side.SELL (2).
  It has no time in force: every limit is GTC.
- market ("M"): it has no IOC. Its market order is `price=0` ("match at any
  price"), but a remainder that finds no more liquidity would then rest on
  the book at price 0 (a sell at 0 would become the best ask and every later
  buy would trade at 0). IOC is emulated: `add_order("BENCH", 0, qty, side)`
  and, when `leaves_qty > 0`, `cancel_order` of that order right away; both
  calls are inside the timed window of the message.
- cancel ("C"): `cancel_order(order_id, "BENCH")`. It numbers orders itself
  (1, 2, 3, ... per `add_order`), which is exactly the stream's id sequence,
  so stream ids are its ids (checked after the run). It has no accounts, so a
  cancel is not checked against an owner. It keeps fully filled orders in its
  id map, and cancelling one whose price level has since emptied fails an
  `assert` inside the library (no state has changed at that point); that is
  caught and counted as the no-op it is for every other engine.
- trades: it returns, per incoming order, one aggressor record per price
  level and one passive record per resting order hit. A "trade" here is one
  passive record (one maker fill, as in the other engines); traded quantity is
  the incoming order's `cum_qty`.
- no users, so no self-trade prevention: it trades an incoming order against
  its own user's resting orders, which ours and matching-engine (cancel-taker)
  do not. Its volume therefore equals matching-engine's with `--stp none`,
  not ours.
"""

from __future__ import annotations

import os
import sys
import time
from importlib.metadata import version

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from lightmatchingengine.lightmatchingengine import LightMatchingEngine, Side  # noqa: E402

NAME = "lightmatchingengine"
INSTMT = "BENCH"


def prepare(stream: list[tuple]) -> list[tuple]:
    sides = (Side.BUY, Side.SELL)
    out = []
    for m in stream:
        k = m[0]
        if k == "L":
            out.append(("L", m[4], m[5], sides[m[3]]))
        elif k == "M":
            out.append(("M", m[4], sides[m[3]]))
        else:
            out.append(("C", m[1]))
    return out


def run(stream: list[tuple]) -> dict:
    prepared = prepare(stream)
    n = len(prepared)
    last_id = sum(1 for m in stream if m[0] != "C")
    eng = LightMatchingEngine()
    add = eng.add_order
    cancel = eng.cancel_order
    pc = time.perf_counter_ns
    lat = [0] * n
    trades = quantity = cancelled = cancel_failed = 0
    common.settle_gc()

    i = 0
    t0 = time.perf_counter()
    for m in prepared:
        k = m[0]
        if k == "L":
            s = pc()
            order, tr = add(INSTMT, m[1], m[2], m[3])
            e = pc()
        elif k == "M":
            s = pc()
            order, tr = add(INSTMT, 0, m[1], m[2])
            if order.leaves_qty:
                cancel(order.order_id, INSTMT)
            e = pc()
        else:
            s = pc()
            try:
                c = cancel(m[1], INSTMT)
            except AssertionError:
                c = None
                cancel_failed += 1
            e = pc()
            lat[i] = e - s
            i += 1
            if c is not None:
                cancelled += 1
            continue
        lat[i] = e - s
        i += 1
        if tr:
            oid = order.order_id
            for t in tr:
                if t.order_id != oid:
                    trades += 1
            quantity += order.cum_qty
    seconds = time.perf_counter() - t0

    if eng.curr_order_id != last_id:
        raise SystemExit(f"order id mismatch: engine numbered {eng.curr_order_id}, stream {last_id}")
    book = eng.order_books.get(INSTMT)
    bids = book.bids if book else {}
    asks = book.asks if book else {}
    return common.result(
        NAME,
        n,
        seconds,
        lat,
        trades,
        quantity,
        "lightmatchingengine %s; no users so no self-trade prevention; market = price 0 "
        "+ immediate cancel of the remainder (IOC emulation, both timed); cancels of "
        "filled orders whose level is gone raise AssertionError inside the library "
        "(caught, no-op: %d)" % (version("lightmatchingengine"), cancel_failed),
        best_bid=max(bids) if bids else None,
        best_ask=min(asks) if asks else None,
        resting_orders=sum(len(v) for v in bids.values()) + sum(len(v) for v in asks.values()),
        cancels_done=cancelled,
    )


def main() -> None:
    args = common.arg_parser(__doc__.splitlines()[0]).parse_args()
    stream = common.load_stream(args.count, args.seed, args.users)
    common.emit(run(stream))


if __name__ == "__main__":
    main()
