"""The service as a real subprocess: start it, wait for readiness, stop it, kill it.

Each `ServiceProcess` owns one data directory and is configured only through
the `ORDER_SERVICE_*` environment of API.md. Every start runs in a new session
(its own process group), so a test can kill the whole group with SIGKILL, and
`cleanup` leaves nothing behind: it kills the group and then every process that
still carries this object's marker in its environment (Ray processes the
service started may have left the group).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

REPOSITORY = Path(__file__).resolve().parents[2]
READY_DEADLINE = 90.0
STOP_DEADLINE = 60.0
# Variables of the parent environment that would configure the service behind the test's back.
_INHERITED_CONFIGURATION = ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def service_command() -> list[str]:
    """Return the command that starts the service: the console script, else `python -m gateway`."""
    script = Path(sys.executable).parent / "order-service"
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "gateway", "serve"]


class ServiceProcess:
    """One service on one data directory; may be started, stopped and killed many times."""

    def __init__(self, data_dir: Path, log_dir: Path, admin_token: str | None, port: int | None = None,
                 environment: dict[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.log_dir = Path(log_dir)
        self.admin_token = admin_token
        self.port = port or free_port()
        # More ORDER_SERVICE_* settings for every run (shard counts, map size...).
        self.extra_environment = dict(environment or {})
        self.process: subprocess.Popen | None = None
        self.runs = 0
        # Inherited by every process the service starts (Ray's too), so cleanup finds them all.
        self.marker = f"E2E_SERVICE_PROCESS={uuid.uuid4().hex}"
        self._log_files: list[tuple[Path, Path]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("ORDER_SERVICE_") and key not in _INHERITED_CONFIGURATION}
        env.update({
            "ORDER_SERVICE_HOST": "127.0.0.1",
            "ORDER_SERVICE_PORT": str(self.port),
            "ORDER_SERVICE_DATA_DIR": str(self.data_dir),
            "ORDER_SERVICE_SYNC": "true",
            # Two of each whatever the cores, so that trades cross shards and books.
            "ORDER_SERVICE_SHARDS": "2",
            "ORDER_SERVICE_BOOK_ACTORS": "2",
            "PYTHONUNBUFFERED": "1",
        })
        # E2E_WORKERS=N runs every service started here with N gateway processes.
        if os.environ.get("E2E_WORKERS"):
            env["ORDER_SERVICE_WORKERS"] = os.environ["E2E_WORKERS"]
        env.update(self.extra_environment)
        name, value = self.marker.split("=", 1)
        env[name] = value
        if self.admin_token is not None:
            env["ORDER_SERVICE_ADMIN_TOKEN"] = self.admin_token
        return env

    def spawn(self) -> subprocess.Popen:
        """Start one run of the service in its own session; return the process."""
        self.runs += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stdout_path = self.log_dir / f"run{self.runs}.stdout.log"
        stderr_path = self.log_dir / f"run{self.runs}.stderr.log"
        self._log_files.append((stdout_path, stderr_path))
        with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                service_command(), cwd=REPOSITORY, env=self.environment(), stdin=subprocess.DEVNULL,
                stdout=stdout, stderr=stderr, start_new_session=True,
            )
        return self.process

    def start(self, probe: Callable[[], None] | None = None) -> None:
        """Start the service and wait until `/health/ready` answers 200.

        `probe`, if given, is called between readiness polls while the service is
        still recovering (to check what other routes answer meanwhile).
        """
        self.spawn()
        self.wait_ready(probe)

    def wait_ready(self, probe: Callable[[], None] | None = None, deadline: float = READY_DEADLINE) -> None:
        give_up = time.monotonic() + deadline
        with httpx.Client(base_url=self.base_url, timeout=5.0) as client:
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"the service exited with {self.process.returncode} before it was "
                                         f"ready:\n{self.stderr()[-4000:]}")
                try:
                    if probe is not None:
                        probe()
                    if client.get("/health/ready").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > give_up:
                    raise AssertionError(f"the service was not ready within {deadline}s:\n{self.stderr()[-4000:]}")
                # Paces the readiness poll and notices an early exit at once.
                try:
                    self.process.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    pass

    def terminate(self, deadline: float = STOP_DEADLINE) -> int:
        """Send SIGTERM to the service process (a clean shutdown) and return its exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=deadline)

    def stop(self, stop_signal: signal.Signals, target: str = "process",
             deadline: float = STOP_DEADLINE) -> tuple[int, float]:
        """Send a stop signal and wait for the exit; return (exit code, seconds from the signal to the exit).

        `target`: "process" (the service's own process), "group" (its process group, as a
        terminal or `kill -TERM -PGID` does) or "all" (every process this object's runs
        started, wherever their group, as systemd's KillMode=control-group does).
        """
        sent_at = time.monotonic()
        if target == "group":
            os.killpg(self.process.pid, stop_signal)
        elif target == "all":
            for pid in processes_with_environment(self.marker):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, stop_signal)
        else:
            self.process.send_signal(stop_signal)
        exit_code = self.process.wait(timeout=deadline)
        return exit_code, time.monotonic() - sent_at

    def kill_group(self) -> None:
        """SIGKILL the whole process group of the current run and reap the leader."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=STOP_DEADLINE)

    def cleanup(self) -> None:
        """Kill the group and every process this object's runs started, wherever their group."""
        self.kill_group()
        for pid in processes_with_environment(self.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def gateway_workers(self) -> list[int]:
        """The ids of the extra gateway processes (`gateway-worker`) of the current run."""
        return [pid for pid in processes_with_environment(self.marker)
                if "gateway-worker" in _command_line(pid)]

    def stdout(self) -> str:
        return "".join(path.read_text(errors="replace") for path, _ in self._log_files if path.exists())

    def stderr(self) -> str:
        return "".join(path.read_text(errors="replace") for _, path in self._log_files if path.exists())

    def logs(self) -> str:
        return self.stdout() + self.stderr()


def processes_with_environment(entry: str) -> list[int]:
    """Return the ids of processes whose environment holds exactly `entry` (Linux /proc)."""
    wanted = entry.encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as environ:
                if wanted in environ.read().split(b"\0"):
                    found.append(int(name))
        except OSError:
            continue
    return found


def _command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
