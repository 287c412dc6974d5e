"""What the server side of an `http_bench.py` phase costs: CPU use per kind of process, and py-spy profiles.

`CpuMeter` finds the service's processes (the gateway and its Ray processes, by the service's data dir in
their environment; `bench.processes`) plus the fixed processes it is told to watch, and turns two samples
of their CPU time (and of the whole machine's) into cores used per kind of process. `Profiler` runs py-spy
on chosen kinds of process during a phase's measured window and prints where their GIL-holding samples went.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench.load_setup import ServiceProcess
from bench.processes import command_line, cpu_seconds, machine_busy_seconds, service_processes


class CpuMeter:
    """CPU seconds used during a phase by the service's processes (the gateway vs each kind of Ray process),
    by fixed processes (the no-op app, the sink), and by the whole machine."""

    def __init__(self, service: ServiceProcess) -> None:
        self.service = service
        self.pids: dict[int, str] = {}

    def watch(self, pid: int, label: str) -> None:
        self.pids[pid] = label

    def _discover(self) -> None:
        for process in service_processes(self.service.data_dir):
            if process.pid in self.pids:
                continue
            command = command_line(process)
            if command is None:
                continue
            is_gateway = process.pid == self.service.process.pid
            self.pids[process.pid] = "gateway" if is_gateway else _process_kind(command)

    def sample(self) -> dict:
        self._discover()
        times = {pid: spent for pid in self.pids if (spent := cpu_seconds(pid)) is not None}
        return {"pids": times, "machine": machine_busy_seconds(), "clock": time.monotonic()}

    def usage(self, before: dict, after: dict) -> dict[str, float]:
        """Cores used per kind of process between two samples, and by the machine as a whole."""
        seconds = after["clock"] - before["clock"]
        used: dict[str, float] = {}
        for pid, spent in after["pids"].items():
            kind = self.pids[pid]
            used[kind] = used.get(kind, 0.0) + (spent - before["pids"].get(pid, 0.0)) / seconds
        used = dict(sorted(used.items(), key=lambda item: -item[1]))
        used["machine"] = (after["machine"] - before["machine"]) / seconds
        used["seconds"] = seconds
        return used


class Profiler:
    """py-spy on the service's processes (gateway and actors) during a phase's measured window."""

    def __init__(self, directory: Path, rate: int = 100) -> None:
        self.directory = directory
        self.rate = rate
        self.files: list[tuple[str, str, Path]] = []  # (phase, kind, raw file)
        directory.mkdir(parents=True, exist_ok=True)
        self.py_spy = str(Path(sys.executable).parent / "py-spy")

    def start(self, label: str, meter: CpuMeter, seconds: float,
              kinds: tuple[str, ...] = ("gateway", "shard actors", "book actors")) -> list:
        recording = []
        for pid, kind in list(meter.pids.items()):
            if kind not in kinds:
                continue
            path = self.directory / f"{label}-{kind.replace(' ', '_')}-{pid}.txt"
            process = subprocess.Popen([self.py_spy, "record", "--pid", str(pid), "--duration",
                                        str(max(1, int(seconds))), "--rate", str(self.rate), "--format", "raw",
                                        "--nonblocking", "--gil", "-o", str(path)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            recording.append((process, label, kind, path))
        return recording

    def finish(self, recording: list) -> None:
        for process, label, kind, path in recording:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if path.exists():
                self.files.append((label, kind, path))

    def report(self, top: int = 12) -> None:
        """Per phase and kind of process: where the GIL-holding samples were, by package, by function
        (self) and by caller chain (inclusive, frames common to nearly every sample left out)."""
        groups: dict[tuple[str, str], list[Path]] = {}
        for label, kind, path in self.files:
            groups.setdefault((label, kind), []).append(path)
        print(f"\nprofiles (py-spy --gil --nonblocking at {self.rate} Hz over each measured window; "
              f"share of the samples in which the process held the GIL, i.e. ran Python)")
        for (label, kind), paths in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1])):
            own: dict[str, int] = {}
            inclusive: dict[str, int] = {}
            packages: dict[str, int] = {}
            total = 0
            for path in paths:
                for line in path.read_text(errors="replace").splitlines():
                    stack, _, count = line.rpartition(" ")
                    if not stack or not count.isdigit():
                        continue
                    frames = [frame for frame in stack.split(";") if not frame.startswith(("process ", "thread "))]
                    if not frames:
                        continue
                    weight = int(count)
                    total += weight
                    own[frames[-1]] = own.get(frames[-1], 0) + weight
                    package = _package(frames[-1])
                    packages[package] = packages.get(package, 0) + weight
                    for frame in set(frames):
                        inclusive[frame] = inclusive.get(frame, 0) + weight
            if not total:
                continue
            seconds = total / self.rate / len(paths)
            print(f"\n  {label} / {kind}: {len(paths)} process(es), {total} samples "
                  f"(~{seconds:.1f} GIL-seconds per process)")
            print("    by package (self): " + ", ".join(
                f"{name} {count / total:.0%}" for name, count in
                sorted(packages.items(), key=lambda item: -item[1])[:top] if count / total >= 0.01))
            print("    self:      " + "\n               ".join(
                f"{count / total:5.1%} {_short(frame)}" for frame, count in
                sorted(own.items(), key=lambda item: -item[1])[:top]))
            chains = [(frame, count) for frame, count in inclusive.items() if count / total < 0.9]
            print("    inclusive: " + "\n               ".join(
                f"{count / total:5.1%} {_short(frame)}" for frame, count in
                sorted(chains, key=lambda item: -item[1])[:top + 8]))


def _package(frame: str) -> str:
    """The top-level package (or stdlib module) a frame's file belongs to."""
    location = frame.rpartition("(")[2]
    for marker in ("site-packages/", "/work/main/"):
        if marker in location:
            return location.split(marker, 1)[1].split("/", 1)[0].split(".py", 1)[0]
    if "lib/python3" in location:
        rest = location.split("lib/python3", 1)[1].split("/", 1)[-1]
        return "stdlib:" + rest.split("/", 1)[0].split(".py", 1)[0]
    return location.split(":", 1)[0] or "?"


def _short(frame: str) -> str:
    """'function (path/to/site-packages/pkg/mod.py:12)' -> 'function (pkg/mod.py:12)'."""
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in frame:
            head, _, tail = frame.partition("(")
            return f"{head}({tail.split(marker, 1)[1]}" if marker in tail else frame
    return frame


def _process_kind(command: str) -> str:
    for marker, kind in (("gateway-worker", "gateway"), ("AccountShardActor", "shard actors"), ("AssetBookActor", "book actors"),
                         ("RegistryActor", "registry actor"), ("raylet", "raylet"), ("gcs_server", "gcs"),
                         ("ray::IDLE", "idle ray workers")):
        if marker in command:
            return kind
    return "other ray"
