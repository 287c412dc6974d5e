"""What the benchmarks report about the machine they ran on.

The processor's model comes from /proc/cpuinfo: psutil does not name it. A process's CPU time is a
process lookup (`bench.processes`), importable from here too because actors_bench.py imports it here.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from bench.processes import cpu_seconds  # noqa: F401


def cpu_model() -> str:
    """The processor's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg writes them."""
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"
