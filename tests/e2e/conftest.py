"""End-to-end fixtures: the real service as a subprocess on a free port and a temp data dir.

One service serves the whole session (`service`, `api`); tests keep out of
each other's way by creating their own users and assets. Tests that stop,
kill or restart a service take their own (`service_factory`), on their own
data directory. Every process started here is killed at teardown.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.api import Api
from tests.e2e.process import REPOSITORY, ServiceProcess

_GATEWAY_FILES = ("gateway/app.py", "gateway/cli.py")


def _require_gateway() -> None:
    missing = [name for name in _GATEWAY_FILES if not (REPOSITORY / name).exists()]
    if missing:
        pytest.fail(f"the gateway is not there yet: {', '.join(missing)} missing")


@pytest.fixture(scope="session")
def service(tmp_path_factory) -> Iterator[ServiceProcess]:
    """The service shared by the session, with a known admin token."""
    _require_gateway()
    root = tmp_path_factory.mktemp("service")
    process = ServiceProcess(root / "data", root / "logs", admin_token=f"admin-{secrets.token_hex(16)}")
    try:
        process.start()
        yield process
    finally:
        process.cleanup()


@pytest.fixture(scope="session")
def api(service: ServiceProcess) -> Iterator[Api]:
    client = Api(service.base_url, service.admin_token)
    yield client
    client.close()


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator:
    """Make services on data directories of this test; all are killed at teardown."""
    _require_gateway()
    made: list[ServiceProcess] = []

    def make(data_dir: Path | None = None, admin_token: str | None = "generate",
             port: int | None = None, environment: dict[str, str] | None = None) -> ServiceProcess:
        if admin_token == "generate":
            admin_token = f"admin-{secrets.token_hex(16)}"
        index = len(made)
        process = ServiceProcess(data_dir or tmp_path / f"data{index}", tmp_path / f"logs{index}",
                                 admin_token=admin_token, port=port, environment=environment)
        made.append(process)
        return process

    try:
        yield make
    finally:
        for process in made:
            process.cleanup()
