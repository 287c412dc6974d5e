"""The locust file drives the service through the Python client: a short headless run against the
session's service places, cancels and reads orders and holds streams with no failed request."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.process import REPOSITORY


def test_a_short_locust_run_through_the_client_has_requests_and_no_failures(service, tmp_path):
    locust = str(Path(sys.executable).parent / "locust")
    finished = subprocess.run(
        [locust, "-f", str(REPOSITORY / "bench" / "locustfile.py"), "--headless", "--host", service.base_url,
         "--users", "6", "--spawn-rate", "6", "--run-time", "10s", "--stop-timeout", "10", "--only-summary",
         "--csv", str(tmp_path / "load")],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "ORDER_SERVICE_ADMIN_TOKEN": service.admin_token, "LOAD_ASSETS": "LOCA,LOCB"})
    assert finished.returncode == 0, (finished.stdout + finished.stderr)[-5000:]
    with open(tmp_path / "load_stats.csv") as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    assert int(rows["Aggregated"]["Failure Count"]) == 0
    for name in ("admin: create user", "POST /orders (limit)", "GET /orders", "ws subscribe"):
        assert int(rows[name]["Request Count"]) > 0, name
