"""Where a single order's milliseconds go, hop by hop: timestamps from every process, lined up.

Only for orders placed one after another (one in flight: `http_bench.py --phases sequential`, or any
client sending one order at a time), so that every timestamp between an order's arrival in the
gateway's client and its answer belongs to that order.

    git apply bench/hop_trace.patch            # adds actors/hop_trace.py and the trace points (never merged)
    HOP_TRACE=/tmp/trace/t <start the service>; place orders one at a time
    .venv/bin/python bench/hop_trace.py /tmp/trace/t
    git apply -R bench/hop_trace.patch

The stages: gateway.in/out (the client's place_order), call.sent/answered (a coalesced Ray call's
task taking its batch and its answer arriving: the gateway's to the shard, the shard's to the book;
a shard's call to an idle book leaves earlier, within `send`), shard.in (place_orders starts),
shard.ready, shard.holds_made (the holds in memory), shard.may, shard.carried (an early order's hold
encoded for its book), shard.sent_early (its Ray call made), shard.hold/held (the hold's journal
append and its return, early orders), book.in, book.match/matched (the book's journal append and
its return), shard.settle/settled (the book's answer applied), shard.decided (the order has its
verdict). Each line is one step between two consecutive stages of an order: its count, p50, p90
and mean in microseconds. (The patch of 2026-12-02 morning also traced the group-commit writer
thread, writer.start/done; commits of quiet orders are made inline since, so this one does not.)
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path


def main(prefix: str) -> None:
    events = []
    for path in Path(prefix).parent.glob(Path(prefix).name + ".*"):
        pid = path.suffix[1:]
        for line in path.read_text().splitlines():
            stamp, stage = line.split()
            events.append((int(stamp), stage, pid))
    events.sort()
    roles = {pid: stage.split(".")[0] for _, stage, pid in events if stage.split(".")[0] in ("gateway", "shard", "book")}
    orders, current = [], None
    for stamp, stage, pid in events:
        name = stage if stage.split(".")[0] in ("gateway", "shard", "book") else f"{roles.get(pid, '?')}:{stage}"
        if name == "gateway.in":
            current = [(stamp, name)]
        elif current is not None:
            current.append((stamp, name))
            if name == "gateway.out":
                orders.append(current)
                current = None
    if not orders:
        raise SystemExit("no complete order found")
    steps: dict[str, list[float]] = {}
    first_seen: dict[str, float] = {}
    for order in orders:
        start = order[0][0]
        for (before, name_before), (after, name_after) in zip(order, order[1:]):
            key = f"{name_before} -> {name_after}"
            steps.setdefault(key, []).append((after - before) / 1e3)
            first_seen.setdefault(key, (before - start) / 1e3)
    totals = sorted((order[-1][0] - order[0][0]) / 1e3 for order in orders)
    print(f"{len(orders)} orders, gateway.in -> gateway.out: p50 {statistics.median(totals):.0f} us, "
          f"p90 {totals[int(0.9 * len(totals))]:.0f} us")
    for key, values in sorted(steps.items(), key=lambda item: first_seen[item[0]]):
        values.sort()
        share = len(values) / len(orders)
        if share < 0.05:
            continue
        print(f"  {key:48} {share:5.0%} of orders  p50 {statistics.median(values):7.0f} us  "
              f"p90 {values[int(0.9 * len(values))]:7.0f} us  mean {sum(values) / len(values):7.0f} us")


if __name__ == "__main__":
    main(sys.argv[1])
