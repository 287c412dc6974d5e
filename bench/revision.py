"""Which source a benchmark measured: the commit, and the files that differed from it."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


def source_revision() -> str:
    """The commit checked out, and the tracked files changed in the working tree, if any."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPOSITORY, capture_output=True,
                              text=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPOSITORY,
                                capture_output=True, text=True).stdout.splitlines()
    except OSError:
        return "unknown"
    changed = [line[3:] for line in status if line.strip()]
    return (head or "unknown") + (f" with uncommitted changes to {', '.join(changed)}" if changed else "")
