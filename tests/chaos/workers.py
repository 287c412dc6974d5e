"""The worker processes of one service's actors: find them, kill one, see it come back.

A worker is one of the processes that the service started (they carry its
`ServiceProcess.marker` in their environment), and the stream it owns is the
journal directory it holds files open in. Its title, which Ray sets, names the
actor's class: that is checked before anything is killed.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable

from tests.e2e.process import ServiceProcess, processes_with_environment

# Ray titles an actor's worker `ray::<class>` (`ray::<name>:<class>.__init__` while it starts).
CLASSES = {"shard": "AccountShardActor", "book": "AssetBookActor", "registry": "RegistryActor"}


def actor_processes(service: ServiceProcess) -> dict[str, set[int]]:
    """Map each journal stream to the processes of this service that hold it open."""
    prefix = f"{(service.data_dir / 'journals').resolve()}/"
    found: dict[str, set[int]] = defaultdict(set)
    for pid in processes_with_environment(service.marker):
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{descriptor}")
            except OSError:
                continue
            if target.startswith(prefix):
                found[target[len(prefix):].split("/")[0]].add(pid)
    return found


def process_title(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()


def is_actor_worker(pid: int, stream: str) -> bool:
    """Whether the process's title is that of the worker of this stream's kind of actor."""
    title = process_title(pid)
    return title.startswith("ray::") and CLASSES[stream.split("-")[0]] in title


def kill_actor(service: ServiceProcess, stream: str) -> int:
    """SIGKILL the worker process of one actor of this service; return its pid."""
    holders = actor_processes(service).get(stream, set())
    assert len(holders) == 1, f"expected one process holding the {stream} journal, found {holders}"
    (pid,) = holders
    assert is_actor_worker(pid, stream), f"process {pid} holding {stream} is {process_title(pid)!r}"
    os.kill(pid, signal.SIGKILL)
    return pid


def wait_for_exit(pid: int, timeout: float) -> None:
    """Block until a process has exited (its pidfd turns readable when it is gone)."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        readable, _, _ = select.select([descriptor], [], [], timeout)
        assert readable, f"process {pid} did not exit within {timeout}s"
    finally:
        os.close(descriptor)


def wait_for_restart(service: ServiceProcess, stream: str, victim: int, deadline: float,
                     pause: Callable[[float], None]) -> int:
    """Wait until the killed process is gone and a new one holds the stream's journal; return its pid.

    `pause(seconds)` paces the polling (it may return early, when something else happened).
    """
    wait_for_exit(victim, deadline)
    give_up = time.monotonic() + deadline
    while True:
        holders = actor_processes(service).get(stream, set())
        if holders:
            assert victim not in holders
            (pid,) = holders
            assert is_actor_worker(pid, stream), f"process {pid} holding {stream} is {process_title(pid)!r}"
            return pid
        assert time.monotonic() < give_up, f"no process holds the {stream} journal {deadline}s after the kill"
        pause(0.1)


def wait_for_any_exit(service: ServiceProcess, before: dict[str, set[int]], deadline: float,
                      pause: Callable[[float], None]) -> str:
    """Wait until some stream is no longer held by the process that held it `before`; return it."""
    give_up = time.monotonic() + deadline
    while True:
        now = actor_processes(service)
        for stream, pids in before.items():
            if not pids & now.get(stream, set()):
                return stream
        assert time.monotonic() < give_up, f"every actor still runs in its first process after {deadline}s"
        pause(0.1)


def service_pause(service: ServiceProcess) -> Callable[[float], None]:
    """A pause for polls that returns at once, failing, if the service process exits."""
    def pause(seconds: float) -> None:
        try:
            code = service.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return
        raise AssertionError(f"the service exited with {code}:\n{service.stderr()[-4000:]}")
    return pause
