"""Taking an actor's hot state for a snapshot without stopping the actor.

Building a large state on the event loop stops every command for as long as it
takes: about 2 us per open order, so 0.6 s with 300,000 orders resting, and
encoding it (orjson holds the GIL) about as long again. `ForkedCapture` forks
instead: the child is a copy-on-write image of the actor at that instant, builds
and encodes the state there and hands the bytes back through a pipe, while the
actor goes on after the fork (a few ms). `InProcessCapture` builds the state on
the loop and encodes it from a thread: cheaper while the state is small.

Either way the state is taken at one instant of the loop, so a snapshot covers
exactly what was submitted before it (see `JournaledState._snapshot`).
"""

from __future__ import annotations

import gc
import logging
import os
import select
import signal
import time
from collections.abc import Callable
from typing import Any

from journal.codec import encode_record

log = logging.getLogger(__name__)

_PIPE_READ_BYTES = 1 << 20
# A child still building after this long is killed, and the snapshot skipped.
CHILD_DEADLINE_SECONDS = 300.0
# A child failing to build or send the state (the parent then skips this snapshot).
_CHILD_FAILED = 70


class InProcessCapture:
    """The state built now, on the caller's thread; encoded by `collect` (from any thread)."""

    def __init__(self, snapshot_state: Callable[[], Any]) -> None:
        self._state = snapshot_state()

    def collect(self) -> list[bytes] | None:
        return [encode_record(self._state)]


class ForkedCapture:
    """The state as it is now, built and encoded by a forked child; `collect` (from a thread)
    reads it and returns its pieces (`encode_record`'s bytes, in order), or None if the child
    failed.

    The child closes every descriptor but its end of the pipe first: it must not keep the
    journal's lock (a restarted actor would wait for it) or any of the parent's sockets
    alive. It never returns into the parent's code: it ends with `os._exit`, so no atexit
    hook, Ray shutdown or buffered file of the parent runs twice. A parent killed meanwhile
    breaks the pipe and the child ends at its next write."""

    def __init__(self, snapshot_state: Callable[[], Any]) -> None:
        read, write = os.pipe()
        try:
            pid = os.fork()
        except BaseException:
            os.close(read)
            os.close(write)
            raise
        if pid == 0:
            _child(snapshot_state, write)  # never returns
        os.close(write)
        self._pid, self._read = pid, read

    def collect(self) -> list[bytes] | None:
        pieces = []
        deadline = time.monotonic() + CHILD_DEADLINE_SECONDS
        try:
            while select.select([self._read], [], [], max(deadline - time.monotonic(), 0))[0]:
                piece = os.read(self._read, _PIPE_READ_BYTES)
                if not piece:
                    break
                pieces.append(piece)
            else:  # the child is stuck: it must not hold the snapshots up for ever
                os.kill(self._pid, signal.SIGKILL)
        finally:
            os.close(self._read)
            _, status = os.waitpid(self._pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0 or not pieces:
            log.warning("snapshot child %d ended with status %d; this snapshot is skipped", self._pid, code)
            return None
        return pieces


def capture(snapshot_state: Callable[[], Any], *, fork: bool) -> InProcessCapture | ForkedCapture:
    """The owner's state now: from a forked child if `fork` (and the system can fork), else in process."""
    if fork and hasattr(os, "fork"):
        try:
            return ForkedCapture(snapshot_state)
        except OSError as error:  # e.g. no memory for the child's page tables
            log.warning("could not fork to take a snapshot (%s); taking it in process", error)
    return InProcessCapture(snapshot_state)


def _child(snapshot_state: Callable[[], Any], write: int) -> None:
    code = _CHILD_FAILED
    try:
        os.closerange(3, write)
        os.closerange(write + 1, os.sysconf("SC_OPEN_MAX"))
        gc.disable()  # the child lives for one state: collecting would only copy pages
        body = memoryview(encode_record(snapshot_state()))
        while body:
            body = body[os.write(write, body[:_PIPE_READ_BYTES]):]
        code = 0
    except BaseException:  # noqa: BLE001 - nothing may escape into the parent's code
        pass
    finally:
        os._exit(code)
