"""Run the benchmark stream through `matching-engine` 0.1.1 (PyPI, needs Python 3.12).

    bench/.peers/venv312/bin/python bench/peers/run_matching_engine.py --count 1000000 --seed 42
    ... --stp none        # its self-trade prevention off (volume then equals lightmatchingengine's)
    ... --prebuild        # build its command objects before the clock starts (see below)

Prints one JSON line (see `common.py`).

Which path: its pure in-process matcher, `matching_engine.engine.MatchingEngine`
(`process(SequencedCommand) -> list[Event]`). That class does no I/O and reads
no clock; the WAL (`wal.py`, `journal.py`), snapshots and the FastAPI gateway
wrap it and are not used here, i.e. durability is simply not in the path (the
equivalent of "off"). Its `Sequencer` (which reads the wall clock) is not used
either: each message is stamped with seq = its position and ts = 0.

Mapping of the stream onto its API:

- limit ("L"): `NewOrder(order_id, account=user, side, price, qty, LIMIT, GTC,
  post_only=False, stp)`; side 0/1 -> Side.BUY / Side.SELL.
- market ("M"): native `NewOrder(..., price=0, qty, MARKET, IOC)`: crosses
  every level, the remainder is cancelled (event OrderCancelled "unfilled").
- cancel ("C"): `CancelOrder(order_id, account)`; it checks the owner, so the
  owner of each cancelled id is looked up from the stream before the clock
  starts. An id no longer on the book (filled, or never rested) is rejected
  as "unknown_order" without any change: a no-op.
- self-trade prevention: its default, CANCEL_TAKER (cancel the incoming
  order's remainder when its head-of-queue counterpart belongs to the same
  account, keep the resting order), which is the rule our engine implements,
  so on this stream its traded volume should equal ours exactly. `--stp none`
  turns it off.
- trades: one `Trade` event per maker fill; traded quantity is the sum of
  their `qty`.

Its API takes command objects (msgspec structs). By default they are built
inside each message's timed window, as a caller of `process` would have to;
`--prebuild` builds them all before the clock starts, to show what that costs.
"""

from __future__ import annotations

import os
import sys
import time
from importlib.metadata import version

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from matching_engine.domain import (  # noqa: E402
    CancelOrder,
    NewOrder,
    OrderType,
    SelfTradePrevention,
    SequencedCommand,
    Side,
    TimeInForce,
)
from matching_engine.engine import MatchingEngine  # noqa: E402
from matching_engine.events import CancelReason, OrderCancelled, Trade  # noqa: E402

NAME = "matching-engine"


def prepare(stream: list[tuple]) -> list[tuple]:
    """Stream -> ("L", id, account, Side, price, qty) / ("M", id, account, Side, qty) / ("C", id, owner)."""
    sides = (Side.BUY, Side.SELL)
    owner: dict[int, int] = {}
    out = []
    for m in stream:
        k = m[0]
        if k == "L":
            owner[m[1]] = m[2]
            out.append(("L", m[1], m[2], sides[m[3]], m[4], m[5]))
        elif k == "M":
            out.append(("M", m[1], m[2], sides[m[3]], m[4]))
        else:
            out.append(("C", m[1], owner.get(m[1], 0)))
    return out


def run(stream: list[tuple], stp: SelfTradePrevention, prebuild: bool) -> dict:
    prepared = prepare(stream)
    n = len(prepared)
    LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
    GTC, IOC = TimeInForce.GTC, TimeInForce.IOC
    SC = SequencedCommand
    eng = MatchingEngine()
    process = eng.process
    pc = time.perf_counter_ns
    lat = [0] * n
    trades = quantity = cancelled = stp_cancels = 0
    SELF_TRADE = CancelReason.SELF_TRADE

    if prebuild:
        commands = []
        for seq, m in enumerate(prepared, 1):
            k = m[0]
            if k == "L":
                c = NewOrder(m[1], m[2], m[3], m[4], m[5], LIMIT, GTC, False, stp)
            elif k == "M":
                c = NewOrder(m[1], m[2], m[3], 0, m[4], MARKET, IOC, False, stp)
            else:
                c = CancelOrder(m[1], m[2])
            commands.append(SC(seq, 0, c))
        del prepared
        common.settle_gc()
        i = 0
        t0 = time.perf_counter()
        for sc in commands:
            s = pc()
            events = process(sc)
            e = pc()
            lat[i] = e - s
            i += 1
            for ev in events:
                t = type(ev)
                if t is Trade:
                    trades += 1
                    quantity += ev.qty
                elif t is OrderCancelled:
                    if ev.reason is SELF_TRADE:
                        stp_cancels += 1
                    elif type(sc.command) is CancelOrder:
                        cancelled += 1
        seconds = time.perf_counter() - t0
    else:
        common.settle_gc()
        seq = 0
        t0 = time.perf_counter()
        for m in prepared:
            k = m[0]
            seq += 1
            if k == "L":
                s = pc()
                events = process(SC(seq, 0, NewOrder(m[1], m[2], m[3], m[4], m[5], LIMIT, GTC, False, stp)))
                e = pc()
            elif k == "M":
                s = pc()
                events = process(SC(seq, 0, NewOrder(m[1], m[2], m[3], 0, m[4], MARKET, IOC, False, stp)))
                e = pc()
            else:
                s = pc()
                events = process(SC(seq, 0, CancelOrder(m[1], m[2])))
                e = pc()
                lat[seq - 1] = e - s
                if type(events[0]) is OrderCancelled:
                    cancelled += 1
                continue
            lat[seq - 1] = e - s
            for ev in events:
                t = type(ev)
                if t is Trade:
                    trades += 1
                    quantity += ev.qty
                elif t is OrderCancelled and ev.reason is SELF_TRADE:
                    stp_cancels += 1
        seconds = time.perf_counter() - t0

    book = eng.book
    return common.result(
        NAME if stp is SelfTradePrevention.CANCEL_TAKER else f"{NAME} (stp={stp.value})",
        n,
        seconds,
        lat,
        trades,
        quantity,
        "matching-engine %s; in-process MatchingEngine.process, no WAL/journal/snapshots/gateway; "
        "stp=%s; native market IOC; command objects built %s"
        % (version("matching-engine"), stp.value, "before the clock (--prebuild)" if prebuild else "inside the timed call"),
        best_bid=book.best_bid(),
        best_ask=book.best_ask(),
        resting_orders=len(book),
        cancels_done=cancelled,
        stp_cancels=stp_cancels,
    )


def main() -> None:
    parser = common.arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--stp", choices=[s.value for s in SelfTradePrevention], default="cancel_taker")
    parser.add_argument("--prebuild", action="store_true")
    args = parser.parse_args()
    stream = common.load_stream(args.count, args.seed, args.users)
    common.emit(run(stream, SelfTradePrevention(args.stp), args.prebuild))


if __name__ == "__main__":
    main()
