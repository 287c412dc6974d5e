"""Journal benchmark: appends with fsync, group commit, replay, against raw py-lmdb.

Run: .venv/bin/python bench/journal_bench.py [--repeats N] [--replay-events N]

Every figure is the median of several repeats, each in a fresh LMDB
environment in a temporary directory, with fsync on (sync=True,
metasync=True). The baseline is raw py-lmdb in the same run: `putmulti` with
append=True of the very bytes our journal would store, encoded beforehand, so
it measures LMDB's floor for the same records and the same number of commits.
Targets (issue 3): our grouped paths reach at least 0.5x the raw throughput
at the same batch size; replaying 1,000,000 events with checksums and
decoding takes under 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import string
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import lmdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from journal import GroupCommitWriter, LmdbJournal, encode_record  # noqa: E402
from journal.codec import SEQUENCE_KEY  # noqa: E402
from bench.machine import cpu_model, load_average  # noqa: E402

_Measured = TypeVar("_Measured")

SEED = 20240613
POOL_SIZE = 20_000
# A large map for every run, so that no run pays for map growth and ours and
# raw LMDB work on the same file sizes.
MAP_SIZE = 2 * 1024**3
BATCH_SIZES = (1, 10, 100, 1000)
COMMITS_PER_BATCH_SIZE = {1: 1000, 10: 500, 100: 300, 1000: 100}
GROUP_THREAD_COUNTS = (8, 16, 32)
GROUP_PIPELINED_THREADS, GROUP_IN_FLIGHT = 8, 8
GROUP_TASK_COUNTS = (32, 128)
GROUP_SUBMISSIONS_PER_SUBMITTER = 150


def make_event_pool(count: int, seed: int) -> list[dict[str, object]]:
    """Return seeded order events of about 200 bytes when encoded."""
    rng = random.Random(seed)
    assets = ["BTC", "ETH", "SOL", "ADA", "XRP", "DOGE"]
    events = []
    for index in range(count):
        event: dict[str, object] = {
            "type": rng.choice(["OrderAccepted", "TradeExecuted", "FundsHeld", "OrderCancelled"]),
            "order_id": 10_000_000 + index,
            "account": f"user-{rng.randrange(1_000_000):07d}",
            "asset": rng.choice(assets),
            "side": rng.choice(["buy", "sell"]),
            "price": rng.randrange(1, 10**8),
            "quantity": rng.randrange(1, 10**6),
            "time": 1_700_000_000_000_000 + index * 1000,
            "client_order_id": "".join(rng.choices(string.hexdigits.lower(), k=16)),
        }
        filler = 200 - len(encode_record(event)) - len(',"memo":""')
        event["memo"] = "".join(rng.choices(string.ascii_letters, k=max(filler, 0)))
        events.append(event)
    return events


def batch_at(items: list, index: int, size: int) -> list:
    """Return the index-th run of `size` consecutive items, wrapping around."""
    start = (index * size) % (len(items) - size + 1)
    return items[start : start + size]


def open_raw(path: Path) -> tuple[lmdb.Environment, object]:
    environment = lmdb.open(
        str(path), map_size=MAP_SIZE, max_dbs=3, sync=True, metasync=True, writemap=False
    )
    return environment, environment.open_db(b"events")


def ours_batched(directory: Path, pool: list, batch_size: int, commits: int) -> float:
    """Return events/s of LmdbJournal.append_batch at this batch size."""
    batches = [batch_at(pool, index, batch_size) for index in range(commits)]
    with LmdbJournal(directory / "ours", map_size=MAP_SIZE) as journal:
        sequence = 1
        started = time.perf_counter()
        for batch in batches:
            sequence = journal.append_batch(sequence, batch) + 1
        elapsed = time.perf_counter() - started
    return batch_size * commits / elapsed


def raw_batched(directory: Path, records: list[bytes], batch_size: int, commits: int) -> float:
    """Return events/s of raw putmulti(append=True) of pre-encoded records, one commit per batch."""
    batches = [batch_at(records, index, batch_size) for index in range(commits)]
    environment, events = open_raw(directory / "raw")
    pack = SEQUENCE_KEY.pack
    sequence = 1
    started = time.perf_counter()
    for batch in batches:
        with environment.begin(write=True, db=events) as transaction:
            keys = map(pack, range(sequence, sequence + len(batch)))
            transaction.cursor().putmulti(zip(keys, batch), append=True)
        sequence += len(batch)
    elapsed = time.perf_counter() - started
    environment.close()
    return batch_size * commits / elapsed


def submission_plans(pool: list, submitters: int, submissions: int) -> list[list[list]]:
    """Return, per submitter, its seeded submissions of 1-10 events."""
    plans = []
    for submitter in range(submitters):
        rng = random.Random(SEED + submitter)
        plans.append([batch_at(pool, rng.randrange(len(pool)), rng.randint(1, 10)) for _ in range(submissions)])
    return plans


def grouped_threads(
    directory: Path, pool: list, threads: int, in_flight: int = 1
) -> tuple[float, float]:
    """Return (events/s, mean events per commit) of threads submitting 1-10 events at a time.

    Each thread keeps at most `in_flight` submissions unacknowledged: with 1 it
    waits for each before the next, like a caller that answers only once durable.
    """
    plans = submission_plans(pool, threads, GROUP_SUBMISSIONS_PER_SUBMITTER)
    total_events = sum(len(batch) for plan in plans for batch in plan)
    with LmdbJournal(directory / "grouped", map_size=MAP_SIZE) as journal:
        writer = GroupCommitWriter(journal)
        start = threading.Barrier(threads + 1)

        def submit_all(plan: list) -> None:
            unacknowledged: deque = deque()
            start.wait()
            for batch in plan:
                unacknowledged.append(writer.submit(batch))
                if len(unacknowledged) >= in_flight:
                    unacknowledged.popleft().result()
            for future in unacknowledged:
                future.result()

        workers = [threading.Thread(target=submit_all, args=(plan,)) for plan in plans]
        for worker in workers:
            worker.start()
        start.wait()
        started = time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        writer.close()
        assert journal.last_sequence() == total_events
    return total_events / elapsed, total_events / writer.commits


def grouped_tasks(directory: Path, pool: list, tasks: int) -> tuple[float, float]:
    """Return (events/s, mean events per commit) of asyncio tasks each awaiting appends of 1-10 events."""
    plans = submission_plans(pool, tasks, GROUP_SUBMISSIONS_PER_SUBMITTER)
    total_events = sum(len(batch) for plan in plans for batch in plan)

    async def append_all(writer: GroupCommitWriter) -> float:
        async def one_task(plan: list) -> None:
            for batch in plan:
                await writer.append(batch)

        started = time.perf_counter()
        await asyncio.gather(*(one_task(plan) for plan in plans))
        return time.perf_counter() - started

    with LmdbJournal(directory / "grouped", map_size=MAP_SIZE) as journal:
        writer = GroupCommitWriter(journal)
        elapsed = asyncio.run(append_all(writer))
        writer.close()
        assert journal.last_sequence() == total_events
    return total_events / elapsed, total_events / writer.commits


def fill_for_replay(path: Path, pool: list, count: int) -> None:
    """Write `count` events fast (no fsync: only the replay is measured)."""
    records = [encode_record(event) for event in pool]
    with LmdbJournal(path, sync=False, map_size=MAP_SIZE) as journal:
        chunk = 10_000
        for first in range(1, count + 1, chunk):
            size = min(chunk, count - first + 1)
            journal.append_encoded(first, [records[(first + index) % len(records)] for index in range(size)])


def replay(path: Path) -> tuple[float, float, int]:
    """Return (wall seconds, CPU seconds, events) to read every event, verifying and decoding it."""
    with LmdbJournal(path, map_size=MAP_SIZE) as journal:
        started, started_cpu = time.perf_counter(), time.process_time()
        count = 0
        for _sequence, _event in journal.read():
            count += 1
        return time.perf_counter() - started, time.process_time() - started_cpu, count


def raw_iteration(path: Path) -> float:
    """Return seconds for raw cursor iteration over the same records, no checks, no decoding."""
    environment = lmdb.open(str(path), map_size=MAP_SIZE, max_dbs=3, readonly=True, lock=False)
    events = environment.open_db(b"events", create=False)
    started = time.perf_counter()
    with environment.begin(db=events) as transaction:
        for _key, _value in transaction.cursor().iternext():
            pass
    elapsed = time.perf_counter() - started
    environment.close()
    return elapsed


def in_fresh_directory(measure: Callable[[Path], _Measured]) -> _Measured:
    """Run one measurement in a new temporary directory."""
    with tempfile.TemporaryDirectory(prefix="journal-bench-") as directory:
        return measure(Path(directory))


Row = tuple[str, float, float, str]  # path, ours events/s, raw events/s, note


def measure_batched(pool: list, records: list[bytes], repeats: int) -> list[Row]:
    """Measure append_batch against raw putmulti at each batch size."""
    rows = []
    for batch_size in BATCH_SIZES:
        commits = COMMITS_PER_BATCH_SIZE[batch_size]
        ours, raw = [], []
        for _ in range(repeats):
            # Interleaved, so that the disk's and the neighbours' moods touch both alike.
            ours.append(in_fresh_directory(lambda d: ours_batched(d, pool, batch_size, commits)))
            raw.append(in_fresh_directory(lambda d: raw_batched(d, records, batch_size, commits)))
        label = "one event per commit" if batch_size == 1 else f"append_batch of {batch_size}"
        rows.append((label, statistics.median(ours), statistics.median(raw), f"{commits} commits"))
    return rows


def measure_grouped(pool: list, records: list[bytes], repeats: int) -> list[Row]:
    """Measure the group commit paths against raw putmulti at the batch size they reached."""
    paths: list[tuple[str, Callable[[Path], tuple[float, float]]]] = [
        (f"group commit, {count} threads", partial(grouped_threads, pool=pool, threads=count))
        for count in GROUP_THREAD_COUNTS
    ]
    paths.append(
        (
            f"group commit, {GROUP_PIPELINED_THREADS} threads x {GROUP_IN_FLIGHT} in flight",
            partial(grouped_threads, pool=pool, threads=GROUP_PIPELINED_THREADS, in_flight=GROUP_IN_FLIGHT),
        )
    )
    paths += [
        (f"group commit, {count} async tasks", partial(grouped_tasks, pool=pool, tasks=count))
        for count in GROUP_TASK_COUNTS
    ]
    rows = []
    for label, measure in paths:
        ours, raw, sizes = [], [], []
        for _ in range(repeats):
            rate, per_commit = in_fresh_directory(measure)
            # The baseline commits the same number of events per transaction.
            size = max(1, round(per_commit))
            commits = max(100, 20_000 // size)
            ours.append(rate)
            sizes.append(per_commit)
            raw.append(in_fresh_directory(lambda d: raw_batched(d, records, size, commits)))
        note = f"{statistics.median(sizes):.1f} events/commit; raw at the same batch size"
        rows.append((label, statistics.median(ours), statistics.median(raw), note))
    return rows


def measure_replay(pool: list, events: int, repeats: int) -> tuple[float, float, float, float]:
    """Return median wall, best wall and median CPU seconds to replay `events` events, and raw iteration's."""
    with tempfile.TemporaryDirectory(prefix="journal-bench-replay-") as directory:
        stream = Path(directory) / "replay"
        fill_for_replay(stream, pool, events)
        replays = [replay(stream) for _ in range(repeats)]
        assert all(count == events for _, _, count in replays)
        raw_seconds = statistics.median(raw_iteration(stream) for _ in range(repeats))
    wall = statistics.median(seconds for seconds, _, _ in replays)
    best = min(seconds for seconds, _, _ in replays)
    cpu = statistics.median(seconds for _, seconds, _ in replays)
    return wall, best, cpu, raw_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--replay-events", type=int, default=1_000_000)
    parser.add_argument("--replay-repeats", type=int, default=3)
    arguments = parser.parse_args()

    load_before = load_average()
    pool = make_event_pool(POOL_SIZE, SEED)
    records = [encode_record(event) for event in pool]
    rows = measure_batched(pool, records, arguments.repeats)
    rows += measure_grouped(pool, records, arguments.repeats)
    replay_seconds, replay_best_seconds, replay_cpu_seconds, raw_seconds = measure_replay(
        pool, arguments.replay_events, arguments.replay_repeats
    )

    print("Journal benchmark (events/s, median of repeats; ratio = ours / raw py-lmdb putmulti)")
    print()
    print(f"{'path':<40} {'ours ev/s':>12} {'raw ev/s':>12} {'ratio':>7}  notes")
    print("-" * 110)
    for label, ours, raw, note in rows:
        print(f"{label:<40} {ours:>12,.0f} {raw:>12,.0f} {ours / raw:>7.2f}  {note}")
    replay_rate = arguments.replay_events / replay_seconds
    raw_rate = arguments.replay_events / raw_seconds
    print(
        f"{'replay, crc32 + orjson decode':<40} {replay_rate:>12,.0f} {raw_rate:>12,.0f} "
        f"{replay_rate / raw_rate:>7.2f}  {arguments.replay_events:,} events in {replay_seconds:.2f} s "
        f"(best {replay_best_seconds:.2f} s, {replay_cpu_seconds:.2f} s of CPU; "
        f"raw = cursor iteration only, {raw_seconds:.2f} s)"
    )
    print()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lmdb_version = ".".join(map(str, lmdb.version()))
    event_bytes = statistics.mean(len(record) for record in records)
    print("Conditions:")
    print(f"  cpu: {cpu_model()}, {os.cpu_count()} logical cores ({affinity} usable)")
    print(f"  python {platform.python_version()}, py-lmdb {lmdb.__version__} (LMDB {lmdb_version}), {platform.system()} {platform.release()}")
    print("  durability: sync=True, metasync=True, writemap=False (fsync on every commit)")
    print(f"  event: {event_bytes:.0f} bytes stored on average (4-byte crc32 + orjson), seeded pool of {POOL_SIZE:,}")
    print(f"  repeats: {arguments.repeats} (appends), {arguments.replay_repeats} (replay); temp dir under {tempfile.gettempdir()}")
    print(
        f"  group commit: {GROUP_SUBMISSIONS_PER_SUBMITTER} submissions of 1-10 events per thread or task; "
        "each waits for durability before the next unless 'in flight' says otherwise"
    )
    print(f"  load average before / after: {load_before} / {load_average()}")
    grouped_ratios = [ours / raw for label, ours, raw, _ in rows if not label.startswith("one event")]
    print()
    print(
        f"Targets: grouped paths >= 0.5x raw: {'met' if min(grouped_ratios) >= 0.5 else 'MISSED'} "
        f"(lowest {min(grouped_ratios):.2f}); replay of {arguments.replay_events:,} events < 2 s: "
        f"{'met' if replay_seconds < 2 else 'MISSED'} ({replay_seconds:.2f} s)"
    )


if __name__ == "__main__":
    main()
