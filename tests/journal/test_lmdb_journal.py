"""What only the LMDB journal promises: persistence, growth, ownership, detection of damage."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import lmdb
import pytest

from journal import CorruptRecordError, JournalLockedError, LmdbJournal, SequenceGapError
from journal.codec import SEQUENCE_KEY, encode_record
from journal.lmdb_journal import EVENTS_DATABASE, PIECES_MARKER, SNAPSHOTS_DATABASE, SNAPSHOT_PIECE_BYTES
from tests.journal.conftest import make_events

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, *arguments: str) -> subprocess.Popen[str]:
    """Start a Python process that imports this repository's packages."""
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def flip_byte_in_every_copy(data_file: Path, needle: bytes) -> None:
    """Change one byte of `needle` wherever LMDB holds it (old page copies too)."""
    content = bytearray(data_file.read_bytes())
    position = content.find(needle)
    assert position >= 0, "the payload must be in the data file"
    while position >= 0:
        content[position + len(needle) - 1] ^= 0x01
        position = content.find(needle, position + 1)
    data_file.write_bytes(bytes(content))


def delete_stored_key(stream: Path, database: bytes, sequence: int) -> None:
    """Remove one record behind the journal's back, as damage would."""
    with lmdb.open(str(stream), max_dbs=3) as environment:
        handle = environment.open_db(database)
        with environment.begin(write=True, db=handle) as transaction:
            assert transaction.delete(SEQUENCE_KEY.pack(sequence))


class TestLmdbReopen:
    def test_reopen_keeps_events_snapshot_and_last_sequence(self, stream_path: Path) -> None:
        with LmdbJournal(stream_path) as journal:
            journal.append_batch(1, make_events(1, 20))
            journal.write_snapshot(12, {"up_to": 12})
            journal.prune(10)
        with LmdbJournal(stream_path) as journal:
            assert journal.last_sequence() == 20
            assert journal.load_snapshot() == (12, {"up_to": 12})
            assert list(journal.read()) == list(enumerate(make_events(10, 11), start=10))
            with pytest.raises(ValueError):
                journal.prune(14)

    def test_reads_across_reopen_return_one_contiguous_history(self, stream_path: Path) -> None:
        for first_sequence in (1, 6, 11):
            with LmdbJournal(stream_path) as journal:
                assert journal.append_batch(first_sequence, make_events(first_sequence, 5)) == first_sequence + 4
        with LmdbJournal(stream_path) as journal:
            assert list(journal.read()) == list(enumerate(make_events(1, 15), start=1))
            assert [sequence for sequence, _ in journal.read(4, 12)] == list(range(4, 12))

    def test_reopen_after_pruning_every_event_accepts_next_sequence(self, stream_path: Path) -> None:
        with LmdbJournal(stream_path) as journal:
            journal.append_batch(1, make_events(1, 3))
            journal.write_snapshot(3, {})
            journal.prune(4)
        with LmdbJournal(stream_path) as journal:
            assert journal.last_sequence() == 3
            assert journal.append_batch(4, make_events(4, 1)) == 4

    def test_fast_mode_without_sync_keeps_events_across_reopen(self, stream_path: Path) -> None:
        with LmdbJournal(stream_path, sync=False) as journal:
            journal.append_batch(1, make_events(1, 50))
        with LmdbJournal(stream_path) as journal:
            assert list(journal.read()) == list(enumerate(make_events(1, 50), start=1))


class TestLmdbMapGrowth:
    def test_tiny_map_grows_and_keeps_every_event(self, stream_path: Path) -> None:
        payload = "p" * 1000
        with LmdbJournal(stream_path, map_size=64 * 1024) as journal:
            for first_sequence in range(1, 3001, 100):
                events = [[sequence, payload] for sequence in range(first_sequence, first_sequence + 100)]
                journal.append_batch(first_sequence, events)
            assert journal.append_batch(3001, [[3001 + index, payload] for index in range(2000)]) == 5000
            assert [event[0] for _, event in journal.read()] == list(range(1, 5001))
        # Five megabytes of events could only be stored in a map far beyond 64 KiB.
        assert (stream_path / "data.mdb").stat().st_size > 5_000_000
        with LmdbJournal(stream_path, map_size=64 * 1024) as journal:
            assert sum(1 for _ in journal.read()) == 5000
            assert journal.append_batch(5001, [[5001, payload]]) == 5001


class TestLmdbOwnership:
    def test_second_open_in_same_process_raises_locked_naming_path(self, stream_path: Path) -> None:
        with LmdbJournal(stream_path):
            with pytest.raises(JournalLockedError, match=str(stream_path)):
                LmdbJournal(stream_path)
        with LmdbJournal(stream_path) as journal:
            assert journal.last_sequence() == 0

    def test_open_from_second_process_raises_locked(self, stream_path: Path) -> None:
        code = (
            "import sys\n"
            "from journal import JournalLockedError, LmdbJournal\n"
            "try:\n"
            "    LmdbJournal(sys.argv[1])\n"
            "except JournalLockedError as error:\n"
            "    print('locked:', error)\n"
        )
        with LmdbJournal(stream_path):
            process = run_python(code, str(stream_path))
            output, errors = process.communicate(timeout=30)
        assert process.returncode == 0, errors
        assert output.startswith("locked:")
        assert str(stream_path) in output
        assert f"pid {os.getpid()}" in output

    def test_owner_killed_releases_lock_for_next_owner(self, stream_path: Path) -> None:
        code = (
            "import sys\n"
            "from journal import LmdbJournal\n"
            "journal = LmdbJournal(sys.argv[1])\n"
            "journal.append_batch(1, [1, 2, 3])\n"
            "print('ready', flush=True)\n"
            "sys.stdin.read()\n"
        )
        process = run_python(code, str(stream_path))
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        with pytest.raises(JournalLockedError):
            LmdbJournal(stream_path)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        with LmdbJournal(stream_path) as journal:
            assert [event for _, event in journal.read()] == [1, 2, 3]


class TestLmdbDamageDetection:
    def write_marked_stream(self, stream_path: Path) -> None:
        with LmdbJournal(stream_path) as journal:
            for first_sequence in range(1, 101, 10):
                events = [{"marker": f"needle-{sequence:04d}"} for sequence in range(first_sequence, first_sequence + 10)]
                journal.append_batch(first_sequence, events)
            journal.write_snapshot(100, {"marker": "snapshot-needle"})

    def damaged_copy(self, stream_path: Path, tmp_path: Path) -> Path:
        copy = tmp_path / "damaged"
        shutil.copytree(stream_path, copy)
        return copy

    def test_flipped_byte_in_event_raises_corrupt_naming_sequence(
        self, stream_path: Path, tmp_path: Path
    ) -> None:
        self.write_marked_stream(stream_path)
        copy = self.damaged_copy(stream_path, tmp_path)
        flip_byte_in_every_copy(copy / "data.mdb", b"needle-0037")
        with LmdbJournal(copy) as journal:
            replayed: list[int] = []
            with pytest.raises(CorruptRecordError, match="event fails its checksum at sequence 37") as caught:
                replayed.extend(sequence for sequence, _ in journal.read())
            assert caught.value.sequence == 37
            assert str(copy) in str(caught.value)
            assert replayed == list(range(1, 37))
            assert [sequence for sequence, _ in journal.read(38)] == list(range(38, 101))
        with LmdbJournal(stream_path) as journal:
            assert sum(1 for _ in journal.read()) == 100

    def test_flipped_byte_in_snapshot_raises_corrupt_naming_sequence(
        self, stream_path: Path, tmp_path: Path
    ) -> None:
        self.write_marked_stream(stream_path)
        copy = self.damaged_copy(stream_path, tmp_path)
        flip_byte_in_every_copy(copy / "data.mdb", b"snapshot-needle")
        with LmdbJournal(copy) as journal:
            with pytest.raises(CorruptRecordError, match="snapshot fails its checksum") as caught:
                journal.load_snapshot()
            assert caught.value.sequence == 100

    def test_missing_event_raises_corrupt_naming_first_missing_sequence(
        self, stream_path: Path, tmp_path: Path
    ) -> None:
        self.write_marked_stream(stream_path)
        copy = self.damaged_copy(stream_path, tmp_path)
        delete_stored_key(copy, EVENTS_DATABASE, 42)
        delete_stored_key(copy, EVENTS_DATABASE, 43)
        with LmdbJournal(copy) as journal:
            replayed: list[int] = []
            with pytest.raises(CorruptRecordError, match="event is missing at sequence 42") as caught:
                replayed.extend(sequence for sequence, _ in journal.read())
            assert caught.value.sequence == 42
            assert replayed == list(range(1, 42))

    def test_missing_last_event_raises_corrupt_naming_it(self, stream_path: Path, tmp_path: Path) -> None:
        self.write_marked_stream(stream_path)
        copy = self.damaged_copy(stream_path, tmp_path)
        delete_stored_key(copy, EVENTS_DATABASE, 100)
        with LmdbJournal(copy) as journal:
            with pytest.raises(CorruptRecordError) as caught:
                list(journal.read(90))
            assert caught.value.sequence == 100

    def test_stored_key_beyond_metadata_makes_append_raise_sequence_gap(
        self, stream_path: Path, tmp_path: Path
    ) -> None:
        self.write_marked_stream(stream_path)
        copy = self.damaged_copy(stream_path, tmp_path)
        with lmdb.open(str(copy), max_dbs=3) as environment:
            handle = environment.open_db(EVENTS_DATABASE)
            with environment.begin(write=True, db=handle) as transaction:
                transaction.put(SEQUENCE_KEY.pack(105), b"stray")
        with LmdbJournal(copy) as journal:
            with pytest.raises(SequenceGapError, match="already reach sequence 101"):
                journal.append_batch(101, make_events(101, 10))
            assert journal.last_sequence() == 100
            assert sum(1 for _ in journal.read()) == 100


def test_table_puts_ride_in_the_same_transaction_as_the_events_and_readers_see_them(tmp_path: Path) -> None:
    tables = {"things": False, "index": True}
    with LmdbJournal(tmp_path / "stream", tables=tables) as journal:
        journal.append_encoded(1, [encode(["event", 1])],
                               [("things", b"k1", b"v1"), ("index", b"u", b"2"), ("index", b"u", b"1")])
        journal.append_encoded(2, [], [("things", b"k2", b"v2")])  # puts alone, no event
        assert journal.last_sequence() == 1
        with journal.reading() as cursor:
            things = cursor("things")
            assert things.get(b"k1") == b"v1" and things.get(b"k2") == b"v2"
            index = cursor("index")
            assert index.set_key(b"u") and index.count() == 2 and list(index.iternext_dup()) == [b"1", b"2"]
            assert cursor("absent") is None
    # A reader that must not write leaves a table that does not exist out, and sees the others.
    with LmdbJournal(tmp_path / "stream", tables={**tables, "new": False}, create_tables=False) as journal:
        with journal.reading() as cursor:
            assert cursor("new") is None and cursor("things").get(b"k1") == b"v1"
        assert [event for _, event in journal.read()] == [["event", 1]]


def test_a_failed_batch_writes_neither_its_events_nor_its_table_puts(tmp_path: Path) -> None:
    with LmdbJournal(tmp_path / "stream", tables={"things": False}) as journal:
        with pytest.raises(SequenceGapError):
            journal.append_encoded(5, [encode(["event", 5])], [("things", b"k", b"v")])
        with journal.reading() as cursor:
            assert cursor("things").get(b"k") is None
        assert journal.last_sequence() == 0


def encode(value) -> bytes:
    from journal.codec import encode_record

    return encode_record(value)


def snapshot_keys(stream: Path) -> list[bytes]:
    with lmdb.open(str(stream), max_dbs=3) as environment:
        handle = environment.open_db(SNAPSHOTS_DATABASE)
        with environment.begin(db=handle) as transaction:
            return list(transaction.cursor().iternext(values=False))


class TestLmdbSnapshotPieces:
    """A large snapshot is written a piece per transaction, so appends go on in between."""

    def large_state(self, label: str) -> dict:
        # Incompressible enough to need several pieces: ~3 MiB of distinct numbers.
        return {"label": label, "orders": [[order_id, order_id * 7919 % 1000003] for order_id in range(200_000)]}

    def test_large_snapshot_is_stored_in_pieces_and_loads_whole_after_reopen(self, stream_path: Path) -> None:
        state = self.large_state("big")
        record = encode_record(state)
        assert len(record) > 2 * SNAPSHOT_PIECE_BYTES
        with LmdbJournal(stream_path) as journal:
            journal.append_batch(1, make_events(1, 5))
            journal.write_snapshot(2, {"label": "small"})
            journal.write_encoded_snapshot(5, [record[:1000], record[1000:]])
            journal.append_batch(6, make_events(6, 1))  # appends go on after it
        keys = snapshot_keys(stream_path)
        pieces = -(-len(record) // SNAPSHOT_PIECE_BYTES)
        assert keys[0] == SEQUENCE_KEY.pack(5)  # the older snapshot is gone
        assert keys[1:] == [SEQUENCE_KEY.pack(5) + SEQUENCE_KEY.pack(index) for index in range(pieces)]
        with LmdbJournal(stream_path) as journal:
            assert journal.snapshot_sequence() == 5
            assert journal.load_snapshot() == (5, state)
            assert journal.last_sequence() == 6

    def test_pieces_a_crash_cut_short_leave_the_previous_snapshot_latest_and_are_dropped_by_the_next(
        self, stream_path: Path
    ) -> None:
        with LmdbJournal(stream_path) as journal:
            journal.append_batch(1, make_events(1, 9))
            journal.write_snapshot(3, {"label": "previous"})
        # A write of a snapshot at 7 that got two pieces in before the process died: no marker.
        with lmdb.open(str(stream_path), max_dbs=3) as environment:
            handle = environment.open_db(SNAPSHOTS_DATABASE)
            with environment.begin(write=True, db=handle) as transaction:
                for index in range(2):
                    transaction.put(SEQUENCE_KEY.pack(7) + SEQUENCE_KEY.pack(index), b"x" * 100)
        with LmdbJournal(stream_path) as journal:
            assert journal.snapshot_sequence() == 3
            assert journal.load_snapshot() == (3, {"label": "previous"})
            journal.write_snapshot(8, {"label": "next"})
            assert journal.load_snapshot() == (8, {"label": "next"})
        assert snapshot_keys(stream_path) == [SEQUENCE_KEY.pack(8)]

    def test_a_missing_piece_is_reported_as_corrupt_naming_the_snapshot(self, stream_path: Path) -> None:
        record = encode_record(self.large_state("big"))
        with LmdbJournal(stream_path) as journal:
            journal.append_batch(1, make_events(1, 4))
            journal.write_encoded_snapshot(4, [record])
        with lmdb.open(str(stream_path), max_dbs=3) as environment:
            handle = environment.open_db(SNAPSHOTS_DATABASE)
            with environment.begin(write=True, db=handle) as transaction:
                assert transaction.get(SEQUENCE_KEY.pack(4)).startswith(PIECES_MARKER)
                assert transaction.delete(SEQUENCE_KEY.pack(4) + SEQUENCE_KEY.pack(1))
        with LmdbJournal(stream_path) as journal:
            with pytest.raises(CorruptRecordError, match="snapshot piece 1 is missing at sequence 4"):
                journal.load_snapshot()
