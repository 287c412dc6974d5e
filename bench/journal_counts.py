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

from collections import Counter
from pathlib import Path

from actors.config import recorded_layout
from actors.records import BOOK_RECORDS, REGISTRY_RECORDS, SHARD_RECORDS
from engine.events import SettlementApplied, encoded_kind
from journal import LmdbJournal


def streams(data_dir: Path) -> list[str]:
    """The stream names of a data directory, in the layout it was created with."""
    layout = recorded_layout(Path(data_dir))
    return (["registry"] + [f"shard-{index}" for index in range(layout["shard_count"])]
            + [f"book-{index}" for index in range(layout["book_actor_count"])])


def count_stream(path: Path, stream: str) -> dict:
    """Records, events by kind and settlement copies of one stream (read with checksums)."""
    kinds: Counter = Counter()
    records = copies = 0
    journal = LmdbJournal(path, sync=False)
    try:
        snapshot_sequence, _ = journal.load_snapshot() or (None, None)
        for _, raw in journal.read(1):
            records += 1
            if stream.startswith("shard-"):
                event = SHARD_RECORDS.decode(raw)
                kinds[type(event).__name__] += 1
                if type(event) is SettlementApplied:
                    copies += len(event.events)
            elif stream.startswith("book-"):
                record = BOOK_RECORDS.decode(raw)
                groups = getattr(record, "events", None)
                if groups is None:  # a fence or a new asset: one entry
                    kinds[type(record).__name__] += 1
                else:  # a batch of book events, counted by their own kinds
                    kinds.update(encoded_kind(event) for _, events in groups for event in events)
            else:
                kinds[type(REGISTRY_RECORDS.decode(raw)).__name__] += 1
    finally:
        journal.close()
    return {"stream": stream, "records": records, "events": sum(kinds.values()), "settlement_copies": copies,
            "by_kind": dict(sorted(kinds.items())), "snapshot_sequence": snapshot_sequence}


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
