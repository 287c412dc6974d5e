"""A process that appends to a journal until it is killed; run by test_crash.py.

Usage: crash_writer.py STREAM_PATH CYCLE

Several threads submit batches through a GroupCommitWriter. After a batch's
future resolves (its events are durable) the thread prints one line,
`ack CYCLE THREAD BATCH FIRST LAST`, and flushes stdout. An acknowledged
batch must survive SIGKILL; its content is `expected_events(...)`, so the
test can check it without this process.
"""

from __future__ import annotations

import random
import sys
import threading

from journal import GroupCommitWriter, LmdbJournal

THREADS = 4


def expected_events(cycle: int, thread: int, batch: int, count: int) -> list[dict[str, object]]:
    """Return the events a thread submits as its batch number `batch`."""
    return [
        {"cycle": cycle, "thread": thread, "batch": batch, "index": index, "pad": "é" * ((batch * 7 + index) % 40)}
        for index in range(count)
    ]


def batch_size(cycle: int, thread: int, batch: int) -> int:
    """Return how many events a batch holds, the same in this process and in the test."""
    return random.Random(f"{cycle}-{thread}-{batch}").randint(1, 25)


def main() -> None:
    stream_path, cycle = sys.argv[1], int(sys.argv[2])
    journal = LmdbJournal(stream_path)
    writer = GroupCommitWriter(journal, max_queue=16)
    output = threading.Lock()

    def append_forever(thread: int) -> None:
        batch = 0
        while True:
            events = expected_events(cycle, thread, batch, batch_size(cycle, thread, batch))
            last_sequence = writer.submit(events).result()
            with output:
                sys.stdout.write(
                    f"ack {cycle} {thread} {batch} {last_sequence - len(events) + 1} {last_sequence}\n"
                )
                sys.stdout.flush()
            batch += 1

    threads = [threading.Thread(target=append_forever, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
