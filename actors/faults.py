"""Named crash points, for tests that must kill an actor at an exact step.

A point fires only when the service was configured with it, and only once
per data directory (a marker file records that it fired), so the actor that
Ray restarts after the crash runs on. Firing is `os._exit`: no cleanup, no
flush, as close to `kill -9` as a process can do to itself.
"""

from __future__ import annotations

import os

from actors.config import ServiceConfig


def armed(config: ServiceConfig, name: str) -> bool:
    """Whether `crash_point(config, name)` would fire now."""
    return name in config.crash_points and not (config.data_dir / f"crashed-at-{name}").exists()


def crash_point(config: ServiceConfig, name: str) -> None:
    """Kill this process here if the configuration names this point and it has not fired yet."""
    if name not in config.crash_points:
        return
    marker = config.data_dir / f"crashed-at-{name}"
    try:
        descriptor = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return
    os.fsync(descriptor)
    os._exit(137)
