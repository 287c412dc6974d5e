"""The durable journal: one LMDB environment per stream.

Layout: the stream is a directory holding LMDB's `data.mdb` and `lock.mdb`
and our `journal.lock`. Three named databases live in the environment:
`events` (sequence -> record), `snapshots` (sequence covered -> record) and
`meta` (`last_sequence` and `first_sequence`, the first event not pruned).
A large snapshot is written in pieces, each in its own short transaction so
that appends go on between them: sequence + piece number (16-byte keys) ->
the record's bytes, then sequence -> `PIECES_MARKER` + their count, which is
what makes it the latest snapshot. Writing a snapshot drops the older ones
(only the latest is ever read) and any pieces a crash left unfinished.
`last_sequence` is kept in meta, written in the same transaction as the
events, so it survives pruning every event. An owner may declare more named
databases (`tables`, e.g. an actor's history and its indexes): puts into them
ride along with a batch of events, in the same write transaction, so the
tables never disagree with the events; `reading()` opens a read transaction
over them that never waits for the writer.

Invariants:
- The stored events are exactly first_sequence..last_sequence, each key one
  more than the previous; `read` checks this and every checksum, and names
  the first bad sequence instead of returning a corrupt history.
- A batch is written in one write transaction, or not at all: a full map
  aborts the transaction, doubles the map and retries the whole batch.
- With `sync=True` (the default) a write is on disk when the call returns;
  with `sync=False` it survives a crash of the process but not of the machine.

Ownership: the process that opened the journal is its only writer (the lock
file refuses a second one). Within the process the methods may be called
from several threads; `_guard` serializes every write transaction, and a map
resize (which must not run while any transaction of this process is open)
also waits for the readers of `reading()` to finish (`_readers`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from itertools import chain, islice
from pathlib import Path
from typing import Any, TypeVar

import lmdb

from journal.codec import SEQUENCE_KEY, decode_chunk, decode_record, encode_record
from journal.errors import CorruptRecordError, JournalError, SequenceGapError
from journal.lock import StreamLock
from journal.rules import require_next_sequence, require_prunable, require_snapshot_sequence

DEFAULT_MAP_SIZE = 64 * 1024 * 1024
EVENTS_DATABASE = b"events"
SNAPSHOTS_DATABASE = b"snapshots"
META_DATABASE = b"meta"
LAST_SEQUENCE_KEY = b"last_sequence"
FIRST_SEQUENCE_KEY = b"first_sequence"

# Records fetched per read transaction: large enough to amortize the
# transaction, small enough that a replay neither pins old pages nor holds
# the guard against the writer for long.
READ_CHUNK_RECORDS = 1024
# Deletions per prune transaction, to stay far below LMDB's dirty-page limit.
PRUNE_CHUNK_RECORDS = 65536
# Bytes of a snapshot written per transaction: the writer of appends waits at most
# for one of these (a few ms) while a large snapshot is written.
SNAPSHOT_PIECE_BYTES = 1 << 20
# The value under a snapshot's sequence when its record is stored in pieces. No record
# starts like this: after the 4-byte checksum comes a JSON value, never "ES".
PIECES_MARKER = b"PIECES\0"
# Seconds between two pieces, in which the writer of appends takes the lock.
_PIECE_PAUSE_SECONDS = 0.001

_pack = SEQUENCE_KEY.pack
_Result = TypeVar("_Result")


class LmdbJournal:
    """A journal stream stored in an LMDB environment at `path` (a directory)."""

    def __init__(
        self, path: str | Path, *, sync: bool = True, map_size: int = DEFAULT_MAP_SIZE,
        tables: Mapping[str, bool] | None = None, create_tables: bool = True,
    ) -> None:
        """Open (or create) the stream; `tables` names the owner's extra databases, each with
        whether it keeps sorted duplicate values per key (LMDB's dupsort). Without
        `create_tables` a table that does not exist yet is left out (a reader that must not write)."""
        self.path = Path(path)
        self._stream = str(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        # Lock before LMDB opens anything, so a second owner never touches the files.
        self._ownership = StreamLock(self.path)
        try:
            self._environment = lmdb.open(
                self._stream,
                map_size=map_size,
                subdir=True,
                max_dbs=3 + len(tables or {}),
                sync=sync,
                metasync=True,
                writemap=False,
            )
            self._events = self._environment.open_db(EVENTS_DATABASE)
            self._snapshots = self._environment.open_db(SNAPSHOTS_DATABASE)
            self._meta = self._environment.open_db(META_DATABASE)
            self._tables = {}
            for name, dupsort in (tables or {}).items():
                try:
                    self._tables[name] = self._environment.open_db(name.encode(), dupsort=dupsort,
                                                                   create=create_tables)
                except lmdb.NotFoundError:
                    pass
            self._first_sequence, self._last_sequence, self._latest_snapshot_sequence = (
                self._load_positions()
            )
        except BaseException:
            self._ownership.release()
            raise
        self._guard = threading.Lock()
        self.loaded_snapshot_bytes = 0  # the size of the snapshot `load_snapshot` last returned
        self._readers = 0  # read transactions of `reading()` open now
        self._no_readers = threading.Condition(threading.Lock())
        self._closed = False

    def __enter__(self) -> LmdbJournal:
        return self

    def __exit__(self, *exception_info: object) -> None:
        self.close()

    def append_batch(self, first_sequence: int, events: Sequence[Any]) -> int:
        """Write events as sequences first_sequence.. in one transaction; return the last one."""
        return self.append_encoded(first_sequence, [encode_record(event) for event in events])

    def append_encoded(self, first_sequence: int, records: Sequence[bytes],
                       writes: Sequence[tuple[str, bytes, bytes]] = ()) -> int:
        """Write records made by `encode_record` like `append_batch` writes events, and the
        (table, key, value) puts of `writes` in the same transaction."""
        with self._guard:
            self._require_open()
            require_next_sequence(self._stream, first_sequence, self._last_sequence)
            if not records and not writes:
                return self._last_sequence
            last_sequence = first_sequence + len(records) - 1
            tables = self._tables

            def write(transaction: lmdb.Transaction) -> None:
                put = transaction.put
                for table, key, value in writes:
                    put(key, value, db=tables[table])
                if not records:
                    return
                cursor = transaction.cursor(self._events)
                items = zip(map(_pack, range(first_sequence, last_sequence + 1)), records)
                # In append mode LMDB skips, without raising, a key that is not
                # above the highest stored one: count what was really added.
                _, added = cursor.putmulti(items, append=True)
                if added != len(records):
                    raise SequenceGapError(
                        f"journal stream {self._stream}: stored events already reach "
                        f"sequence {first_sequence} or beyond, although the stream "
                        f"metadata says the last one is {self._last_sequence}"
                    )
                transaction.put(LAST_SEQUENCE_KEY, _pack(last_sequence), db=self._meta)

            self._write(write)
            self._last_sequence = max(last_sequence, self._last_sequence)
            return self._last_sequence

    @contextmanager
    def reading(self) -> Iterator[Callable[[str], lmdb.Cursor | None]]:
        """A read transaction over the owner's tables: yields `cursor(table)` (None for a table that
        does not exist). It sees every batch committed before it began and never waits for the writer."""
        with self._no_readers:
            self._require_open()
            self._readers += 1
        try:
            with self._environment.begin() as transaction:
                tables = self._tables
                yield lambda table: transaction.cursor(tables[table]) if table in tables else None
        finally:
            with self._no_readers:
                self._readers -= 1
                if not self._readers:
                    self._no_readers.notify_all()

    def read(self, start: int = 1, stop: int | None = None) -> Iterator[tuple[int, Any]]:
        """Yield verified, decoded (sequence, event) pairs with start <= sequence < stop."""
        with self._guard:
            self._require_open()
            first = max(start, self._first_sequence)
            end = self._last_sequence + 1 if stop is None else min(stop, self._last_sequence + 1)
        return chain.from_iterable(self._decoded_chunks(first, end))

    def last_sequence(self) -> int:
        """Return the sequence of the last event ever appended, 0 for a new stream."""
        with self._guard:
            self._require_open()
            return self._last_sequence

    def write_snapshot(self, sequence: int, state: Any) -> None:
        """Store a state that covers the events up to and including sequence."""
        self.write_encoded_snapshot(sequence, [encode_record(state)])

    def write_encoded_snapshot(self, sequence: int, pieces: Sequence[bytes]) -> None:
        """Store a snapshot given as `encode_record`'s bytes, split anywhere into pieces;
        beyond `SNAPSHOT_PIECE_BYTES` it is written a piece per transaction (appends go on
        in between) and becomes the latest snapshot only with its last transaction."""
        chunks = _chunks(pieces, SNAPSHOT_PIECE_BYTES)
        with self._guard:
            self._require_open()
            require_snapshot_sequence(self._stream, sequence, self._last_sequence,
                                      self._latest_snapshot_sequence)
        if len(chunks) > 1:
            for index, chunk in enumerate(chunks):
                with self._guard:
                    self._require_open()
                    self._write(lambda transaction, index=index, chunk=chunk: transaction.put(
                        _pack(sequence) + _pack(index), chunk, db=self._snapshots))
                time.sleep(_PIECE_PAUSE_SECONDS)
            value = PIECES_MARKER + _pack(len(chunks))
        else:
            value = chunks[0]
        with self._guard:
            self._require_open()
            require_snapshot_sequence(self._stream, sequence, self._last_sequence,
                                      self._latest_snapshot_sequence)
            self._write(partial(self._put_snapshot, sequence=sequence, value=value))
            self._latest_snapshot_sequence = sequence

    def snapshot_sequence(self) -> int | None:
        """Return the sequence the latest snapshot covers, or None when there is none."""
        with self._guard:
            return self._latest_snapshot_sequence

    def load_snapshot(self) -> tuple[int, Any] | None:
        """Return the latest (sequence, state), or None when there is no snapshot."""
        with self._guard:
            self._require_open()
            with self._environment.begin(db=self._snapshots) as transaction:
                cursor = transaction.cursor()
                if not _latest_snapshot(cursor):
                    return None
                key, record = cursor.item()
                sequence = SEQUENCE_KEY.unpack(key)[0]
                pieces = _piece_count(record)
                if pieces:
                    record = _joined_pieces(self._stream, cursor, key, pieces)
        self.loaded_snapshot_bytes = len(record)
        return sequence, decode_record(self._stream, sequence, record, kind="snapshot")

    def prune(self, before: int) -> int:
        """Drop events with sequence < before (at most latest snapshot + 1); return how many."""
        with self._guard:
            self._require_open()
            require_prunable(self._stream, before, self._latest_snapshot_sequence)
            removed = 0
            while self._first_sequence < before:
                chunk_end = min(before, self._first_sequence + PRUNE_CHUNK_RECORDS)
                removed += self._write(partial(self._prune_chunk, before=chunk_end))
                self._first_sequence = chunk_end
            return removed

    def close(self) -> None:
        """Release the stream; further calls raise JournalError."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            self._environment.close()
            self._ownership.release()

    def _load_positions(self) -> tuple[int, int, int | None]:
        with self._environment.begin() as transaction:
            first = transaction.get(FIRST_SEQUENCE_KEY, db=self._meta)
            last = transaction.get(LAST_SEQUENCE_KEY, db=self._meta)
            cursor = transaction.cursor(self._snapshots)
            snapshot = SEQUENCE_KEY.unpack(cursor.key())[0] if _latest_snapshot(cursor) else None
        return (
            SEQUENCE_KEY.unpack(first)[0] if first else 1,
            SEQUENCE_KEY.unpack(last)[0] if last else 0,
            snapshot,
        )

    def _require_open(self) -> None:
        if self._closed:
            raise JournalError(f"journal stream {self._stream} is closed")

    def _write(self, operation: Callable[[lmdb.Transaction], _Result]) -> _Result:
        # Called with the guard held, so no other transaction of this process
        # is open when the map is resized.
        while True:
            try:
                with self._environment.begin(write=True) as transaction:
                    return operation(transaction)
            except lmdb.MapFullError:
                # The transaction was aborted as a whole; retry it in a larger map, once no
                # reader of this process holds a transaction open.
                with self._no_readers:
                    while self._readers:
                        self._no_readers.wait()
                    self._environment.set_mapsize(self._environment.info()["map_size"] * 2)

    def _decoded_chunks(self, next_sequence: int, end: int) -> Iterator[Iterator[tuple[int, Any]]]:
        while next_sequence < end:
            count = min(READ_CHUNK_RECORDS, end - next_sequence)
            records, missing_sequence = self._fetch(next_sequence, count)
            # The good events before a fault are handed out before it is raised.
            yield decode_chunk(self._stream, next_sequence, records)
            if missing_sequence is not None:
                raise CorruptRecordError(self._stream, missing_sequence, "event is missing")
            next_sequence += count

    def _fetch(self, first_sequence: int, count: int) -> tuple[list[bytes], int | None]:
        """Return up to `count` records from first_sequence on and the first missing sequence."""
        with self._guard:
            self._require_open()
            if first_sequence < self._first_sequence:
                raise JournalError(
                    f"journal stream {self._stream}: events before {self._first_sequence} "
                    f"were pruned while they were being read"
                )
            with self._environment.begin(db=self._events) as transaction:
                cursor = transaction.cursor()
                if cursor.set_key(_pack(first_sequence)):
                    records = list(islice(cursor.iternext(keys=False), count))
                    # Keys are unique and ascending, so `count` records that start
                    # at first_sequence and end at first_sequence + count - 1 are
                    # exactly the contiguous run: no per-key check is needed.
                    if len(records) == count and cursor.key() == _pack(first_sequence + count - 1):
                        return records, None
                return _contiguous_prefix(cursor, first_sequence, count)

    def _put_snapshot(self, transaction: lmdb.Transaction, sequence: int, value: bytes) -> None:
        """Make `value` the snapshot at `sequence`; drop the older ones and unfinished pieces."""
        key = _pack(sequence)
        pieces = _piece_count(value)
        cursor = transaction.cursor(self._snapshots)
        while cursor.first() and cursor.key() < key:
            cursor.delete()
        # Past this snapshot's own pieces nothing is valid: pieces of a write a crash cut short.
        if cursor.set_range(key + _pack(pieces)):
            while cursor.key():
                cursor.delete()
        transaction.put(key, value, db=self._snapshots)

    def _prune_chunk(self, transaction: lmdb.Transaction, before: int) -> int:
        limit = _pack(before)
        removed = 0
        cursor = transaction.cursor(self._events)
        if cursor.first():
            while cursor.key() and cursor.key() < limit:
                cursor.delete()
                removed += 1
        # A snapshot older than before - 1 needs events that are now gone.
        snapshot_limit = _pack(max(before - 1, 0))
        cursor = transaction.cursor(self._snapshots)
        if cursor.first():
            while cursor.key() and cursor.key() < snapshot_limit:
                cursor.delete()
        transaction.put(FIRST_SEQUENCE_KEY, limit, db=self._meta)
        return removed


def _chunks(pieces: Sequence[bytes], size: int) -> list[bytes | memoryview]:
    """The pieces' bytes cut into chunks of `size` (the last one shorter; at least one)."""
    record = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    if len(record) <= size:
        return [record]
    view = memoryview(record)
    return [view[start:start + size] for start in range(0, len(record), size)]


def _latest_snapshot(cursor: lmdb.Cursor) -> bool:
    """Put the cursor on the latest snapshot's own key (not on a piece); False if there is none."""
    found = cursor.last()
    while found and len(cursor.key()) != SEQUENCE_KEY.size:
        found = cursor.prev()
    return found


def _piece_count(value: bytes) -> int:
    """How many pieces the snapshot stored under a sequence has: 0 for a whole record."""
    return SEQUENCE_KEY.unpack(value[len(PIECES_MARKER):])[0] if value.startswith(PIECES_MARKER) else 0


def _joined_pieces(stream: str, cursor: lmdb.Cursor, key: bytes, count: int) -> bytes:
    pieces = []
    for index in range(count):
        if not cursor.set_key(key + _pack(index)):
            raise CorruptRecordError(stream, SEQUENCE_KEY.unpack(key)[0], f"snapshot piece {index} is missing")
        pieces.append(cursor.value())
    return b"".join(pieces)


def _contiguous_prefix(
    cursor: lmdb.Cursor, first_sequence: int, count: int
) -> tuple[list[bytes], int | None]:
    """Walk key by key to find where the run from first_sequence breaks."""
    records: list[bytes] = []
    expected = first_sequence
    if cursor.set_range(_pack(first_sequence)):
        for key, record in cursor.iternext():
            if key != _pack(expected):
                break
            records.append(record)
            expected += 1
            if expected == first_sequence + count:
                return records, None
    return records, expected
