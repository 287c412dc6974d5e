"""Journals written by an older revision still replay: the `journal_v1` fixture.

`tests/fixtures/journal_v1` is a data directory written by the actors of commit 3596753,
whose records were positional lists (see `tests/fixtures/make_journal_v1.py`). Today's
code reads them through each actor's record codec, which upcasts them; the rebuilt state
of every stream must be the one that revision reported.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from actors.offline import verify

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "journal_v1"


@pytest.fixture
def data_dir(tmp_path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(FIXTURE, copy)
    return copy


def test_journal_v1_replays_to_the_state_its_own_revision_reported(data_dir):
    expected = json.loads((FIXTURE / "expected.json").read_text())
    report = verify(data_dir)
    assert report["problems"] == []
    assert report["streams"] == expected["streams"]
    for key in ("totals", "net_deposits", "open_orders", "resting_orders", "users",
                "recovered_settlements", "aborted_orders"):
        assert report[key] == expected[key], key


def test_verify_command_passes_on_journal_v1(data_dir):
    result = subprocess.run([sys.executable, "-m", "gateway", "verify", "--data-dir", str(data_dir)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "OK:" in result.stderr
