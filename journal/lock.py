"""Single ownership of a journal stream through a lock file.

The owner holds an exclusive `flock` on `journal.lock` in the stream directory
for as long as the journal is open. A second open (from another process, or
from this one: flock locks belong to the open file description, not to the
process) is refused at once. The kernel drops the lock when the owner's last
descriptor closes, so a process killed with SIGKILL leaves no stale lock.
The descriptor is close-on-exec so that programs the owner starts do not keep
the stream locked after the owner dies.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from journal.errors import JournalLockedError

LOCK_FILE_NAME = "journal.lock"


class StreamLock:
    """An exclusive, non-blocking lock on one stream directory."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_FILE_NAME
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(descriptor)
            os.close(descriptor)
            raise JournalLockedError(
                f"journal stream {directory} is already open for writing "
                f"(lock file {self.path} is held{holder}); a stream has one owner at a time"
            ) from None
        except BaseException:
            os.close(descriptor)
            raise
        # The pid is only a hint for the message above; the lock is the flock.
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        """Release the lock; calling it again does nothing."""
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


def _read_holder(descriptor: int) -> str:
    text = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
    return f" by pid {text}" if text.isdigit() else ""
