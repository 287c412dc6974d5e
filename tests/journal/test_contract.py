"""The storage contract, held against every journal implementation."""

from __future__ import annotations

import zlib

import pytest

from journal import CorruptRecordError, Journal, JournalError, SequenceGapError, encode_record, recover
from tests.journal.conftest import make_events


class TestJournalContract:
    def test_new_journal_last_sequence_is_zero(self, journal: Journal) -> None:
        assert journal.last_sequence() == 0
        assert list(journal.read()) == []
        assert journal.load_snapshot() is None

    def test_append_batch_then_read_returns_events_in_sequence_order(self, journal: Journal) -> None:
        events = make_events(1, 5)
        assert journal.append_batch(1, events) == 5
        assert journal.append_batch(6, make_events(6, 3)) == 8
        assert journal.last_sequence() == 8
        assert list(journal.read()) == list(enumerate(make_events(1, 8), start=1))

    def test_read_range_returns_half_open_interval(self, journal: Journal) -> None:
        journal.append_batch(1, make_events(1, 10))
        assert [sequence for sequence, _ in journal.read(3, 7)] == [3, 4, 5, 6]
        assert [sequence for sequence, _ in journal.read(9)] == [9, 10]
        assert [sequence for sequence, _ in journal.read(8, 100)] == [8, 9, 10]
        assert list(journal.read(11)) == []
        assert list(journal.read(5, 5)) == []
        assert list(journal.read(7, 3)) == []

    def test_read_many_records_crosses_chunk_boundaries_in_order(self, journal: Journal) -> None:
        journal.append_batch(1, list(range(1, 10_001)))
        assert [event for _, event in journal.read()] == list(range(1, 10_001))
        assert [sequence for sequence, _ in journal.read(4000, 8200)] == list(range(4000, 8200))

    def test_events_come_back_as_json_values(self, journal: Journal) -> None:
        journal.append_batch(1, [(1, "a"), {"nested": [None, True, 2**63 - 1]}, "text", -5, None])
        assert [event for _, event in journal.read()] == [
            [1, "a"],
            {"nested": [None, True, 2**63 - 1]},
            "text",
            -5,
            None,
        ]

    @pytest.mark.parametrize("first_sequence", [0, 2, 5], ids=["before", "overlap", "gap"])
    def test_append_batch_not_next_raises_sequence_gap(
        self, journal: Journal, first_sequence: int
    ) -> None:
        journal.append_batch(1, make_events(1, 3))
        with pytest.raises(SequenceGapError, match=f"starts at sequence {first_sequence}"):
            journal.append_batch(first_sequence, make_events(first_sequence, 2))
        assert journal.last_sequence() == 3
        assert [sequence for sequence, _ in journal.read()] == [1, 2, 3]

    def test_empty_batch_writes_nothing_and_returns_last_sequence(self, journal: Journal) -> None:
        journal.append_batch(1, make_events(1, 2))
        assert journal.append_batch(3, []) == 2
        assert journal.last_sequence() == 2
        with pytest.raises(SequenceGapError):
            journal.append_batch(7, [])

    def test_unencodable_event_raises_type_error_and_writes_nothing(self, journal: Journal) -> None:
        with pytest.raises(TypeError):
            journal.append_batch(1, [{"fine": 1}, object()])
        assert journal.last_sequence() == 0
        assert journal.append_batch(1, [{"fine": 1}]) == 1

    def test_record_with_right_checksum_but_bad_body_raises_corrupt_after_good_events(
        self, journal: Journal
    ) -> None:
        body = b'{"half":'
        journal.append_encoded(1, [encode_record("ok"), zlib.crc32(body).to_bytes(4, "big") + body])
        replayed = []
        with pytest.raises(CorruptRecordError, match="cannot be decoded at sequence 2") as caught:
            replayed.extend(journal.read())
        assert caught.value.sequence == 2
        assert replayed == [(1, "ok")]

    def test_snapshot_written_later_wins_on_load(self, journal: Journal) -> None:
        journal.append_batch(1, make_events(1, 10))
        journal.write_snapshot(3, {"balance": 3})
        journal.write_snapshot(7, {"balance": 7})
        assert journal.load_snapshot() == (7, {"balance": 7})
        journal.write_snapshot(7, {"balance": "seven"})
        assert journal.load_snapshot() == (7, {"balance": "seven"})

    def test_snapshot_given_in_pieces_loads_whole_and_replaces_the_older_ones(self, journal: Journal) -> None:
        journal.append_batch(1, make_events(1, 10))
        journal.write_snapshot(3, {"balance": 3})
        state = {"orders": [[order_id, "alice", 100 + order_id] for order_id in range(500)]}
        record = encode_record(state)
        pieces = [record[start:start + 777] for start in range(0, len(record), 777)]
        journal.write_encoded_snapshot(9, pieces)
        assert journal.load_snapshot() == (9, state)
        assert journal.snapshot_sequence() == 9
        with pytest.raises(ValueError, match="older than the latest snapshot"):
            journal.write_encoded_snapshot(5, [encode_record({"balance": 5})])
        assert journal.load_snapshot() == (9, state)

    def test_snapshot_beyond_last_sequence_raises_value_error(self, journal: Journal) -> None:
        journal.append_batch(1, make_events(1, 2))
        with pytest.raises(ValueError, match="outside the stored events"):
            journal.write_snapshot(3, {})
        assert journal.load_snapshot() is None

    def test_snapshot_older_than_latest_raises_value_error(self, journal: Journal) -> None:
        journal.append_batch(1, make_events(1, 5))
        journal.write_snapshot(4, {})
        with pytest.raises(ValueError, match="older than the latest snapshot"):
            journal.write_snapshot(2, {})

    def test_recover_returns_latest_snapshot_and_events_after_it(self, journal: Journal) -> None:
        journal.append_batch(1, make_events(1, 6))
        journal.write_snapshot(4, {"up_to": 4})
        journal.append_batch(7, make_events(7, 2))
        state, sequence, events = recover(journal)
        assert (state, sequence) == ({"up_to": 4}, 4)
        assert list(events) == list(enumerate(make_events(5, 4), start=5))

    def test_recover_without_snapshot_returns_every_event(self, journal: Journal) -> None:
        journal.append_batch(1, make_events(1, 3))
        state, sequence, events = recover(journal)
        assert (state, sequence) == (None, 0)
        assert [number for number, _ in events] == [1, 2, 3]

    def test_prune_drops_events_before_bound_and_keeps_last_sequence(self, journal: Journal) -> None:
        journal.append_batch(1, make_events(1, 10))
        journal.write_snapshot(6, {"up_to": 6})
        assert journal.prune(5) == 4
        assert [sequence for sequence, _ in journal.read()] == [5, 6, 7, 8, 9, 10]
        assert [sequence for sequence, _ in journal.read(2, 7)] == [5, 6]
        assert journal.prune(5) == 0
        assert journal.prune(7) == 2
        assert journal.last_sequence() == 10
        assert journal.load_snapshot() == (6, {"up_to": 6})

    def test_prune_every_event_keeps_last_sequence_and_accepts_next_append(
        self, journal: Journal
    ) -> None:
        journal.append_batch(1, make_events(1, 4))
        journal.write_snapshot(4, {"up_to": 4})
        assert journal.prune(5) == 4
        assert journal.last_sequence() == 4
        assert list(journal.read()) == []
        with pytest.raises(SequenceGapError):
            journal.append_batch(1, make_events(1, 1))
        assert journal.append_batch(5, make_events(5, 1)) == 5
        assert list(journal.read()) == [(5, make_events(5, 1)[0])]

    def test_prune_beyond_latest_snapshot_raises_value_error(self, journal: Journal) -> None:
        journal.append_batch(1, make_events(1, 10))
        with pytest.raises(ValueError, match="no snapshot exists"):
            journal.prune(2)
        journal.write_snapshot(5, {})
        with pytest.raises(ValueError, match="pruning may go up to 6"):
            journal.prune(7)
        assert [sequence for sequence, _ in journal.read()] == list(range(1, 11))

    def test_closed_journal_refuses_calls(self, journal: Journal) -> None:
        journal.append_batch(1, make_events(1, 1))
        journal.close()
        with pytest.raises(JournalError, match="closed"):
            journal.append_batch(2, make_events(2, 1))
        with pytest.raises(JournalError, match="closed"):
            list(journal.read())
        with pytest.raises(JournalError, match="closed"):
            journal.last_sequence()
