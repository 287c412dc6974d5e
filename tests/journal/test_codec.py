"""The record layout: checksum + orjson body, and how damage is reported."""

from __future__ import annotations

import zlib

import pytest

from journal import CorruptRecordError
from journal.codec import decode_chunk, decode_record, encode_record


def records_with(index: int, damaged: bytes, count: int = 5) -> list[bytes]:
    records = [encode_record({"n": number}) for number in range(count)]
    records[index] = damaged
    return records


def test_encode_record_starts_with_big_endian_crc32_of_orjson_body() -> None:
    record = encode_record({"price": 10, "side": "buy"})
    assert record[4:] == b'{"price":10,"side":"buy"}'
    assert record[:4] == zlib.crc32(record[4:]).to_bytes(4, "big")
    assert decode_record("s", 1, record) == {"price": 10, "side": "buy"}


def test_decode_chunk_intact_records_yields_every_pair() -> None:
    pairs = decode_chunk("s", 10, [encode_record(value) for value in ("a", 2, None)])
    assert list(pairs) == [(10, "a"), (11, 2), (12, None)]


@pytest.mark.parametrize(
    "damaged, problem",
    [
        (b"\x00\x00", "event fails its checksum"),
        (b"", "event fails its checksum"),
        (b"\x00\x00\x00\x00{}", "event fails its checksum"),
        (zlib.crc32(b"{oops").to_bytes(4, "big") + b"{oops", "event cannot be decoded"),
    ],
    ids=["too-short", "empty", "wrong-checksum", "checksum-right-json-wrong"],
)
def test_decode_chunk_bad_record_yields_good_prefix_then_raises_naming_it(
    damaged: bytes, problem: str
) -> None:
    decoded: list[tuple[int, object]] = []
    with pytest.raises(CorruptRecordError) as caught:
        decoded.extend(decode_chunk("stream-x", 100, records_with(2, damaged)))
    assert decoded == [(100, {"n": 0}), (101, {"n": 1})]
    assert caught.value.sequence == 102
    assert str(caught.value) == f"journal stream stream-x: {problem} at sequence 102"


def test_decode_record_damaged_snapshot_raises_naming_its_sequence() -> None:
    with pytest.raises(CorruptRecordError, match="snapshot fails its checksum at sequence 7"):
        decode_record("s", 7, b"\x01\x02\x03\x04{}", kind="snapshot")
