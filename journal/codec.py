"""How records and keys are laid out on disk.

A key is the record's sequence number as a big-endian unsigned 64-bit
integer, so that LMDB's byte order is the numeric order and appends always
land at the end of the tree. A value is the CRC32 of the body (4 bytes,
big-endian) followed by the body, the orjson encoding of the event. The same
layout is used for snapshots and by `MemoryJournal`, so both implementations
decode through the same checks.
"""

from __future__ import annotations

import operator
import struct
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from journal.errors import CorruptRecordError

SEQUENCE_KEY = struct.Struct(">Q")
CHECKSUM_SIZE = 4

_body_of = operator.itemgetter(slice(CHECKSUM_SIZE, None))
_checksum_of = operator.itemgetter(slice(0, CHECKSUM_SIZE))


def encode_record(value: Any) -> bytes:
    """Encode a value as checksum + orjson body; raises TypeError if it is not serializable."""
    body = orjson.dumps(value)
    return zlib.crc32(body).to_bytes(CHECKSUM_SIZE, "big") + body


def decode_chunk(
    stream: str, first_sequence: int, records: Sequence[bytes], kind: str = "event"
) -> Iterator[tuple[int, Any]]:
    """Yield verified, decoded (sequence, value) pairs; raise CorruptRecordError at the first bad record."""
    # Replay speed rests on this function. The checksums of the whole chunk
    # are compared in C; the values are then decoded one at a time as the
    # caller takes them (by map, in C), so each dies young and the garbage
    # collector is not woken by a chunk's worth of live dicts. Apart from the
    # hand-off of `yield from`, Python code runs per record only to find the
    # record at fault.
    bodies = list(map(_body_of, records))
    intact = len(records) if _checksums_match(records, bodies) else _first_checksum_failure(records)
    try:
        yield from zip(
            range(first_sequence, first_sequence + intact), map(orjson.loads, bodies[:intact])
        )
    except orjson.JSONDecodeError:
        # The checksum matched, so the body was written this way: still not
        # a state to load.
        bad = first_sequence + len(_decodable_prefix(bodies))
        raise CorruptRecordError(stream, bad, f"{kind} cannot be decoded") from None
    if intact < len(records):
        raise CorruptRecordError(stream, first_sequence + intact, f"{kind} fails its checksum")


def decode_record(stream: str, sequence: int, record: bytes, kind: str = "event") -> Any:
    """Verify one record's checksum and decode it."""
    for _, value in decode_chunk(stream, sequence, (record,), kind):
        return value
    raise AssertionError("decode_chunk yields the record or raises")


def _checksums_match(records: Sequence[bytes], bodies: list[bytes]) -> bool:
    checksums = b"".join(map(_checksum_of, records))
    if len(checksums) != CHECKSUM_SIZE * len(records):
        return False  # some record is too short to hold its checksum
    return tuple(map(zlib.crc32, bodies)) == struct.unpack(f">{len(records)}I", checksums)


def _first_checksum_failure(records: Sequence[bytes]) -> int:
    for index, record in enumerate(records):
        if len(record) < CHECKSUM_SIZE:
            return index
        if zlib.crc32(record[CHECKSUM_SIZE:]) != int.from_bytes(record[:CHECKSUM_SIZE], "big"):
            return index
    raise AssertionError("a checksum of the chunk failed, so one of its records fails")


def _decodable_prefix(bodies: list[bytes]) -> list[Any]:
    values = []
    for body in bodies:
        try:
            values.append(orjson.loads(body))
        except orjson.JSONDecodeError:
            break
    return values
