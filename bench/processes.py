"""Process lookups shared by the benchmarks, through psutil.

A service's processes are found by the `ORDER_SERVICE_DATA_DIR` in their environment: the gateway and
every process its Ray starts inherit it, and no other process carries a bench's temp data dir. Every
lookup skips (or answers None for) a process that is gone or not ours to read, because the benches
sample processes that start and stop under them.

psutil gives everything but one thing: the split of resident memory into anonymous, file-backed and
shared pages, and the peak resident size. `status_memory_kib` reads those from `/proc/<pid>/status`
(Linux), the one place that does; the soak's memory bound and bench/README.md are defined on
`RssAnon`, and psutil's `uss` is not the same figure (it counts private file pages too).
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil

DATA_DIR_VARIABLE = "ORDER_SERVICE_DATA_DIR"

# The /proc/<pid>/status fields psutil has no name for, in KiB.
STATUS_FIELDS = ("RssAnon", "RssFile", "RssShmem", "VmHWM")

_GONE = (psutil.NoSuchProcess, psutil.AccessDenied)


def processes_with_environment(name: str, value: str) -> list[psutil.Process]:
    """Every live process but this one whose environment sets `name` to `value`."""
    found = []
    for process in psutil.process_iter(["environ"]):
        # Another user's process answers None (AccessDenied), like one that exited meanwhile.
        environment = process.info["environ"]
        if environment and environment.get(name) == value and process.pid != os.getpid():
            found.append(process)
    return found


def service_processes(data_dir: str | os.PathLike) -> list[psutil.Process]:
    """The gateway and the Ray processes of the service running on `data_dir`, as it was passed to it."""
    return processes_with_environment(DATA_DIR_VARIABLE, str(data_dir))


def command_line(process: psutil.Process) -> str | None:
    """The process's arguments joined by spaces, or None if it is gone."""
    try:
        return " ".join(process.cmdline()).strip()
    except _GONE:
        return None


def open_paths(pid: int) -> list[str]:
    """The regular files the process holds open (none if it is gone)."""
    try:
        return [entry.path for entry in psutil.Process(pid).open_files()]
    except _GONE:
        return []


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (its children not included), or None if it is gone."""
    try:
        times = psutil.Process(pid).cpu_times()
    except _GONE:
        return None
    return times.user + times.system


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (every process, ours or not) since boot."""
    times = psutil.cpu_times()
    # Waiting for I/O is idle time; guest time is already counted in user time.
    return sum(getattr(times, field, 0.0) for field in ("user", "nice", "system", "irq", "softirq", "steal"))


def resident_kib(pid: int) -> int | None:
    """Resident size of a process in KiB (`VmRSS`), or None if it is gone."""
    try:
        return psutil.Process(pid).memory_info().rss // 1024
    except _GONE:
        return None


def status_memory_kib(pid: int) -> dict[str, int] | None:
    """`RssAnon`, `RssFile`, `RssShmem` and `VmHWM` of a process in KiB, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    figures = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in STATUS_FIELDS:
            figures[name] = int(value.split()[0])
    return figures
