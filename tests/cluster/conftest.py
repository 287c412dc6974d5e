"""A three-node Ray cluster on one machine (ray.cluster_utils.Cluster), its actor tier and two gateways.

Each node has its own data directory, standing for its own disk, given to its
raylet as ORDER_SERVICE_DATA_DIR, and carries the labels of the journals it
holds: the head the registry, shard-0 and book-0; node 1 shard-1 and book-1;
node 2 shard-2 and book-2. `order-service actors` creates the actor tier as an
operator would; two `order-service serve` gateways, each on its own port and
data directory, attach to the cluster by RAY_ADDRESS. The tests in this folder
run under the `cluster` marker (`make test-cluster`); `make test` runs them too.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.api import Api
from tests.e2e.process import REPOSITORY, ServiceProcess, service_command

NODES = 3
SHARDS = BOOKS = 3
LAYOUT = {"ORDER_SERVICE_SHARDS": str(SHARDS), "ORDER_SERVICE_BOOK_ACTORS": str(BOOKS)}
ACTORS_DEADLINE = 120.0


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "cluster: runs a Ray cluster of several nodes on this machine")


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if "tests/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)


def node_streams(index: int) -> list[str]:
    """The journals node `index` holds."""
    return (["registry"] if index == 0 else []) + [f"shard-{index}", f"book-{index}"]


@dataclass
class LocalCluster:
    """The nodes of one cluster, each with its data directory; a node can be removed and added back."""

    root: Path
    admin_token: str
    cluster: object = None
    nodes: dict[int, object] = field(default_factory=dict)
    ray_tmpdir: str | None = None
    auth_token_path: str | None = None
    previous: dict[str, str | None] = field(default_factory=dict)

    def node_args(self, index: int) -> dict:
        data_dir = self.root / f"node{index}"
        data_dir.mkdir(parents=True, exist_ok=True)
        return dict(num_cpus=1, labels={f"order-service/{stream}": "true" for stream in node_streams(index)},
                    env_vars={"ORDER_SERVICE_DATA_DIR": str(data_dir)})

    def start(self) -> None:
        from ray.cluster_utils import Cluster

        # Cluster writes its address where a bare ray.init() on this machine would find and join
        # it (RAY_TMPDIR/ray/ray_current_cluster): kept in a directory of its own, short enough
        # for the nodes' unix sockets, so that no other Ray user of the machine joins this one.
        self.ray_tmpdir = tempfile.mkdtemp(prefix="oc", dir="/tmp")
        # One cluster token for the nodes, this process and every gateway and command below (a Ray
        # started with RAY_AUTH_TOKEN_PATH set asks for it). Ray keeps the first token a process
        # loads: if the session's Ray (tests/conftest.py) set one, the cluster uses it too.
        self.auth_token_path = os.environ.get("RAY_AUTH_TOKEN_PATH")
        if not self.auth_token_path:
            token_path = self.root / "ray_auth_token"
            token_path.write_text(secrets.token_hex(32))
            token_path.chmod(0o600)
            self.auth_token_path = str(token_path)
        self.previous = {name: os.environ.get(name) for name in ("RAY_TMPDIR", "RAY_AUTH_TOKEN_PATH")}
        os.environ.update(RAY_TMPDIR=self.ray_tmpdir, RAY_AUTH_TOKEN_PATH=self.auth_token_path)
        self.cluster = Cluster(initialize_head=True, head_node_args=self.node_args(0))
        self.nodes[0] = self.cluster.head_node
        for index in range(1, NODES):
            self.add(index)

    def add(self, index: int) -> None:
        """Start node `index` (again) with its labels and its data directory."""
        self.nodes[index] = self.cluster.add_node(wait=True, **self.node_args(index))

    def remove(self, index: int) -> None:
        """Kill every process of node `index`, as a machine that is gone."""
        self.cluster.remove_node(self.nodes.pop(index), allow_graceful=False)

    def node_id(self, index: int) -> str:
        return self.nodes[index].node_id

    def environment(self) -> dict[str, str]:
        return {"RAY_ADDRESS": self.cluster.address, "RAY_AUTH_TOKEN_PATH": self.auth_token_path, **LAYOUT}

    def run_cli(self, *arguments: str, data_dir: Path, admin_token: str | None = None,
                **overrides: str) -> subprocess.CompletedProcess:
        """Run an `order-service` command against the cluster (as ServiceProcess configures a service)."""
        process = ServiceProcess(data_dir, self.root / "cli-logs", admin_token=admin_token or self.admin_token,
                                 environment={**self.environment(), **overrides})
        command = [*service_command()[:-1], *arguments]
        return subprocess.run(command, cwd=REPOSITORY, env=process.environment(), capture_output=True, text=True,
                              timeout=ACTORS_DEADLINE + 30)

    def shutdown(self) -> None:
        if self.cluster is not None:
            # Node by node: Cluster.shutdown also resets this process's key-value client, which the
            # session's own Ray (tests/conftest.py), if a test started it, still needs.
            for node in list(self.cluster.worker_nodes):
                self.cluster.remove_node(node)
            if self.cluster.head_node is not None:
                self.cluster.remove_node(self.cluster.head_node)
        if self.ray_tmpdir is not None:
            for name, value in self.previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            shutil.rmtree(self.ray_tmpdir, ignore_errors=True)


@dataclass
class Gateways:
    cluster: LocalCluster
    services: list[ServiceProcess]
    apis: list[Api]


@pytest.fixture(scope="module")
def gateways(tmp_path_factory) -> Iterator[Gateways]:
    """The cluster, its actor tier (created by `order-service actors`) and two gateways on it."""
    root = tmp_path_factory.mktemp("cluster")
    local = LocalCluster(root, admin_token=f"admin-{secrets.token_hex(16)}")
    services: list[ServiceProcess] = []
    try:
        local.start()
        created = local.run_cli("actors", "--wait", str(ACTORS_DEADLINE), "--json", data_dir=root / "node0")
        assert created.returncode == 0, created.stdout + created.stderr
        for index in range(2):
            service = ServiceProcess(root / f"gateway{index}", root / f"gateway{index}-logs",
                                     admin_token=local.admin_token, environment=local.environment())
            services.append(service)
            service.start()
        apis = [Api(service.base_url, local.admin_token) for service in services]
        yield Gateways(local, services, apis)
        for api in apis:
            api.close()
    finally:
        for service in services:
            service.cleanup()
        local.shutdown()
