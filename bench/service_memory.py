"""The memory of every process of a running service, by role.

A service's processes are the gateway (the `order-service serve` process) and everything its Ray
started, which all carry the service's `ORDER_SERVICE_DATA_DIR` in their environment (found by
`bench.processes.service_processes`, as in `http_measure.CpuMeter`). Each gets a role: an actor by
the journal it holds open (`shard-0`, `book-1`, `registry`: the stream's LMDB file among its open
files, which names the stream exactly, unlike the process title `ray::AccountShardActor`), Ray's own
processes by their command line (`raylet`, `gcs_server`, `dashboard`, ...), idle Ray workers as
`idle worker <pid>`.

Figures per process, in KiB: `VmRSS` (resident, from psutil), split into `RssAnon` (private heap and
stacks: where a leak shows), `RssFile` (mapped files: the LMDB journal pages an actor has read or
looked up, which the kernel may drop at any time) and `RssShmem` (shared memory: Ray's object
store); and `VmHWM`, the peak resident size. psutil has no names for the last four; they come from
`/proc/<pid>/status` through `bench.processes.status_memory_kib`.
"""

from __future__ import annotations

from pathlib import Path

from bench.processes import command_line, open_paths, resident_kib, service_processes, status_memory_kib

FIELDS = ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM")

# Command-line markers of Ray's own processes, first match wins.
_RAY_ROLES = (
    ("raylet/raylet", "raylet"), ("gcs_server", "gcs_server"), ("dashboard/dashboard.py", "dashboard"),
    ("ray::DashboardAgent", "dashboard agent"), ("dashboard/agent.py", "dashboard agent"),
    ("ray::RuntimeEnvAgent", "runtime env agent"), ("runtime_env/agent", "runtime env agent"),
    ("log_monitor.py", "log monitor"), ("autoscaler/_private/monitor.py", "autoscaler monitor"),
    ("ray::IDLE", "idle worker"),
)


def read_memory(pid: int) -> dict[str, int] | None:
    """The memory figures of one process in KiB, or None if it is gone."""
    resident = resident_kib(pid)
    split = status_memory_kib(pid)
    if resident is None or split is None:
        return None
    return {"VmRSS": resident, **split}


def _journal_stream(pid: int, journals: str) -> str | None:
    """The stream whose journal this process holds open, if any."""
    for path in open_paths(pid):
        if path.startswith(journals) and path.endswith("/data.mdb"):
            return path[len(journals):].split("/", 1)[0]
    return None


def _ray_role(command: str) -> str:
    for marker, role in _RAY_ROLES:
        if marker in command:
            return role
    return "other: " + command.split(" ", 1)[0].rsplit("/", 1)[-1][:40]


class ServiceProcesses:
    """Finds a service's processes by its data dir and samples their memory by role."""

    def __init__(self, data_dir: Path, gateway_pid: int) -> None:
        self.data_dir = Path(data_dir)
        self.journals = str(self.data_dir.resolve() / "journals") + "/"
        self.gateway_pid = gateway_pid

    def roles(self) -> dict[str, int]:
        """{role: pid} for every live process of the service."""
        found: dict[str, int] = {}
        for process in service_processes(self.data_dir):
            pid = process.pid
            command = command_line(process)
            if command is None:
                continue
            if pid == self.gateway_pid:
                role = "gateway"
            else:
                role = _journal_stream(pid, self.journals) or _ray_role(command)
                if role.startswith(("idle worker", "other: ")) or role in found:
                    role = f"{role} {pid}"
            found[role] = pid
        return dict(sorted(found.items(), key=lambda item: _role_order(item[0])))

    def sample(self) -> dict[str, dict]:
        """{role: {"pid": pid, VmRSS: KiB, RssAnon: KiB, ...}} for every live process of the service."""
        sample = {}
        for role, pid in self.roles().items():
            figures = read_memory(pid)
            if figures is not None:
                sample[role] = {"pid": pid, **figures}
        return sample


def _role_order(role: str) -> tuple:
    kind, _, number = role.partition("-")
    rank = {"gateway": 0, "registry": 1, "shard": 2, "book": 3, "raylet": 4, "gcs_server": 5}.get(kind, 6)
    return (rank, int(number) if number.isdigit() else 0, role)
