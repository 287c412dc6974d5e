"""The append-only event journal: one durable, gapless stream per owner.

`LmdbJournal` stores a stream in its own LMDB environment; `MemoryJournal`
keeps the same contract in memory for tests. `GroupCommitWriter` shares one
transaction and one fsync among many concurrent appends. `recover` returns
the latest snapshot and the events after it. The journal knows nothing of the
engine: events are orjson-serializable values.
"""

from journal.codec import encode_record
from journal.errors import CorruptRecordError, JournalError, JournalLockedError, SequenceGapError
from journal.group_commit import GroupCommitWriter
from journal.lmdb_journal import LmdbJournal
from journal.memory_journal import MemoryJournal
from journal.protocol import Journal
from journal.recovery import recover

__all__ = [
    "CorruptRecordError",
    "GroupCommitWriter",
    "Journal",
    "JournalError",
    "JournalLockedError",
    "LmdbJournal",
    "MemoryJournal",
    "SequenceGapError",
    "encode_record",
    "recover",
]
