"""Count what a stopped service's journals hold: records, and the events inside them.

A journal record is not always one event:
- a shard record is one encoded engine event (`OrderAccepted`, `FundsHeld`, `FundsDeposited`, ...);
  a `SettlementApplied` record is one shard event that carries copies of the book events it
  settles (counted apart as `settlement copies`: they are the book's events again, which the
  shard applies to its accounts on replay);
- a book record is an `orders` or `cancels` batch holding the book events of many orders
  (`OrderRested`, `TradeExecuted`, `OrderClosed`), or one `asset` or `fence` entry;
- a registry record is one entry (a user, an asset).

`events` counts each distinct event once: every shard event (a settlement as one), every book
event inside a batch, every registry entry. `applied on replay` adds the settlement copies,
since a replay decodes and applies those too. Snapshots are reported, not counted.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from journal import LmdbJournal


def streams(data_dir: Path) -> list[str]:
    """The stream names of a data directory, in the layout it was created with."""
    layout = json.loads((Path(data_dir) / "layout.json").read_text())
    return (["registry"] + [f"shard-{index}" for index in range(layout["shard_count"])]
            + [f"book-{index}" for index in range(layout["book_actor_count"])])


def count_stream(path: Path, stream: str) -> dict:
    """Records, events by kind and settlement copies of one stream (read with checksums)."""
    kinds: Counter = Counter()
    records = copies = 0
    journal = LmdbJournal(path, sync=False)
    try:
        snapshot = journal.load_snapshot()
        for _, record in journal.read(1):
            records += 1
            if stream.startswith("shard-"):
                kinds[record[0]] += 1
                if record[0] == "SettlementApplied":
                    copies += len(record[3])
            elif stream.startswith("book-"):
                if record[0] in ("orders", "cancels"):  # ["orders", shard, fence, by_asset, ...], ["cancels", by_asset, ...]
                    for _, events in record[3 if record[0] == "orders" else 1]:
                        kinds.update(event[0] for event in events)
                else:
                    kinds[record[0]] += 1
            else:
                kinds[record[0] if isinstance(record, list) and record and isinstance(record[0], str)
                      else "entry"] += 1
    finally:
        journal.close()
    return {"stream": stream, "records": records, "events": sum(kinds.values()), "settlement_copies": copies,
            "by_kind": dict(sorted(kinds.items())), "snapshot_sequence": snapshot[0] if snapshot else None}


def count_events(data_dir: Path) -> dict:
    """Per-stream counts of a stopped service's data dir, and the totals."""
    data_dir = Path(data_dir)
    per_stream = [count_stream(data_dir / "journals" / stream, stream) for stream in streams(data_dir)]
    kinds: Counter = Counter()
    for entry in per_stream:
        kinds.update(entry["by_kind"])
    return {
        "streams": per_stream,
        "records": sum(entry["records"] for entry in per_stream),
        "events": sum(entry["events"] for entry in per_stream),
        "applied_on_replay": sum(entry["events"] + entry["settlement_copies"] for entry in per_stream),
        "by_kind": dict(sorted(kinds.items())),
        "snapshots": {entry["stream"]: entry["snapshot_sequence"] for entry in per_stream
                      if entry["snapshot_sequence"] is not None},
    }
