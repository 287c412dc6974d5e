"""Several gateway processes on one port: `serve` starts, watches and stops the extra ones.

`order-service serve` binds the port once and serves it with ORDER_SERVICE_WORKERS
processes: itself and WORKERS-1 children (`order-service gateway-worker --fd N`),
which inherit the listening socket and the environment (the admin token, the
layout, the metrics directory, Ray's cluster token) and attach to the same Ray
(RAY_ADDRESS, the local Ray's address when `serve` started one). The kernel hands
each new connection to one of the processes. A gateway process holds nothing but
caches of what never changes once written (gateway/runtime.py), so any process
may answer any request; one that dies loses only its requests in flight, which
clients retry by `client_order_id`, and `serve` starts another in its place.

`serve` owns the stop: it signals its children and waits for them (each flushes
and leaves Ray) before it flushes the journals itself and stops the actors and
the local Ray. A child also stops by itself when its parent is gone (`kill -9`
of `serve`), so it never serves on alone.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

log = logging.getLogger(__name__)

# How often the main process looks at its children, and a child at its parent.
WATCH_SECONDS = 0.5
# A child that exits sooner than this after its start is started again only after a pause
# that doubles each time (up to RESPAWN_PAUSE_MOST), so a child that cannot start does not spin.
QUICK_EXIT_SECONDS = 10.0
RESPAWN_PAUSE_MOST = 30.0


class GatewayWorkers:
    """The extra gateway processes of one `serve`, restarted when one dies until `stop`."""

    def __init__(self, count: int, listen_fd: int, environment: dict[str, str]) -> None:
        self.count = count
        self.listen_fd = listen_fd
        self.environment = environment
        self._children: list[tuple[subprocess.Popen, float]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._pause = 0.0
        self._watcher = threading.Thread(target=self._watch, name="gateway-workers", daemon=True)

    def start(self) -> None:
        with self._lock:
            self._children = [self._spawn() for _ in range(self.count)]
        self._watcher.start()

    def pids(self) -> list[int]:
        with self._lock:
            return [child.pid for child, _ in self._children]

    def _spawn(self) -> tuple[subprocess.Popen, float]:
        environment = dict(self.environment, ORDER_SERVICE_PARENT_PID=str(os.getpid()))
        child = subprocess.Popen([sys.executable, "-m", "gateway", "gateway-worker", "--fd", str(self.listen_fd)],
                                 pass_fds=(self.listen_fd,), env=environment, stdin=subprocess.DEVNULL)
        log.info("started gateway process %d", child.pid)
        return child, time.monotonic()

    def _watch(self) -> None:
        while not self._stopping.wait(WATCH_SECONDS):
            with self._lock:
                exited = [(position, child, started) for position, (child, started) in enumerate(self._children)
                          if child.poll() is not None]
            for position, child, started in exited:
                log.warning("gateway process %d exited with %s; starting another", child.pid, child.returncode)
                quick = time.monotonic() - started < QUICK_EXIT_SECONDS
                self._pause = min(max(self._pause * 2, WATCH_SECONDS), RESPAWN_PAUSE_MOST) if quick else 0.0
                if self._pause and self._stopping.wait(self._pause):
                    return
                with self._lock:
                    if self._stopping.is_set():
                        return
                    self._children[position] = self._spawn()

    def stop(self, timeout: float) -> None:
        """SIGTERM every child (each flushes and leaves Ray), wait up to `timeout`, SIGKILL the rest."""
        self._stopping.set()
        with self._lock:
            children = [child for child, _ in self._children]
        for child in children:
            if child.poll() is None:
                # SIGTERM even when the group's signal reached it already: uvicorn takes a second
                # SIGTERM as the same request (a second SIGINT would force an exit).
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in children:
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("gateway process %d did not stop within %.1fs; killing it", child.pid, timeout)
                child.kill()
                child.wait()
        self._watcher.join(timeout=WATCH_SECONDS * 2)


def stop_when_orphaned() -> None:
    """In a child: SIGTERM this process once the `serve` that started it is gone."""
    parent = int(os.environ.get("ORDER_SERVICE_PARENT_PID") or os.getppid())

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_SECONDS)  # a poll period: Linux has no portable parent-exit event here
        log.warning("the serving process %d is gone; stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
