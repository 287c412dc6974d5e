"""`schemathesis run --checks all` over every route of a service of its own, as a user would run it.

Three passes, each with every check (positive data may be refused with 422 for the state-dependent
rules `schemathesis.toml` names): the user routes with a funded user's key; the admin routes and
`/metrics` with the admin token; `POST /api/v1/keys/rotate` last, with a user of its own (it revokes
the key it is called with). The service is seeded with what the document's examples name: the
asset `BTC` and the user `alice`, funded. `SCHEMATHESIS_EXAMPLES` sets the examples per operation
(`make schemathesis` runs 200).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.process import REPOSITORY

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
USER_ROUTES = r"^/api/v1/admin/|^/metrics$|^/api/v1/keys/rotate$"  # excluded from the user pass
ADMIN_ROUTES = r"^/api/v1/admin/|^/metrics$"


def _seed(base_url: str, admin_token: str) -> dict[str, str]:
    admin = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=base_url, headers=admin, timeout=30) as client:
        assert client.post("/api/v1/admin/assets", json={"asset_id": "BTC", "name": "Bitcoin", "tick_size": "0.01",
                                                          "lot_size": "0.001"}).status_code == 201
        keys = {}
        for username in ("alice", "rotator"):
            created = client.post("/api/v1/admin/users", json={"username": username})
            assert created.status_code == 201, created.text
            keys[username] = created.json()["data"]["api_key"]
        for asset_id in ("USD", "BTC"):
            deposit = client.post("/api/v1/admin/deposits",
                                  json={"username": "alice", "asset_id": asset_id, "amount": "1000000"})
            assert deposit.status_code == 201, deposit.text
    return keys


def _run(base_url: str, token: str, *selection: str) -> int:
    """Run one pass; return how many operations it tested."""
    command = [SCHEMATHESIS, "--config-file", str(REPOSITORY / "schemathesis.toml"), "run",
               f"{base_url}/openapi.json", "--checks", "all", "-H", f"Authorization: Bearer {token}",
               "-n", str(EXAMPLES), "--generation-deterministic", *selection]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "NO_COLOR": "1"})
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output[-6000:]
    tested = re.search(r"Tested: (\d+)", output)
    assert tested and int(tested.group(1)) > 0, output[-3000:]
    counts = re.search(r"\d+ generated, \d+ passed[^\n]*", output)
    assert counts, output[-3000:]
    print(f"schemathesis {' '.join(selection)}: {tested.group(1)} operations, {counts.group(0)}")  # -s shows it
    return int(tested.group(1))


def test_schemathesis_with_every_check_finds_nothing_on_any_route(service_factory):
    service = service_factory()
    service.start()
    keys = _seed(service.base_url, service.admin_token)
    users = _run(service.base_url, keys["alice"], "--exclude-path-regex", USER_ROUTES)
    admins = _run(service.base_url, service.admin_token, "--include-path-regex", ADMIN_ROUTES)
    rotation = _run(service.base_url, keys["rotator"], "--include-path-regex", r"^/api/v1/keys/rotate$")
    document = httpx.get(f"{service.base_url}/openapi.json").json()
    every = sum(len([method for method in item if method in ("get", "post", "put", "patch", "delete")])
                for item in document["paths"].values())
    assert users + admins + rotation == every
    with httpx.Client(base_url=service.base_url, timeout=30) as client:
        assert client.get("/health/ready").status_code == 200
