"""The service on a three-node Ray cluster on this machine: HTTP throughput, and one node's recovery.

Starts `ray.cluster_utils.Cluster` with three nodes, each with its own data
directory and the labels of one shard and one book (the head also the
registry), creates the actor tier with `order-service actors`, then runs
`bench/http_bench.py --ray-address ...` against it (single and batched orders,
one gateway process against `--workers N`, paired in one run). Last, node 2 is
removed and added back with the same labels and data, and the time until its
actors are up again (from `order-service layout`'s source, the GCS) is printed
with the size of its journals.

    .venv/bin/python bench/cluster_bench.py [--workers 2] [--repeats 3] [--duration 8]

On one machine the three nodes share its cores: this shows what the cluster
costs per order (placement, more processes), not what more machines would add.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from actors.config import ServiceConfig  # noqa: E402

NODES = 3
POLL_SECONDS = 0.05


def node_args(root: Path, index: int) -> dict:
    streams = (["registry"] if index == 0 else []) + [f"shard-{index}", f"book-{index}"]
    data_dir = root / f"node{index}"
    data_dir.mkdir(parents=True, exist_ok=True)
    return dict(num_cpus=1, labels={f"order-service/{stream}": "true" for stream in streams},
                env_vars={"ORDER_SERVICE_DATA_DIR": str(data_dir)})


def order_service(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "order-service"), *arguments], env=env,
                          capture_output=True, text=True, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0)
    arguments = parser.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    root = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    # Cluster writes its address where a bare ray.init() on this machine would join it: keep it
    # (and the nodes' sessions) in a directory of this run's own.
    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="cb", dir="/tmp")
    # One cluster token for the nodes, the command and the gateways (which inherit the variable).
    token_path = root / "ray_auth_token"
    token_path.write_text(secrets.token_hex(32))
    token_path.chmod(0o600)
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(token_path)
    token = f"admin-{secrets.token_hex(16)}"
    cluster = Cluster(initialize_head=True, head_node_args=node_args(root, 0))
    nodes = {0: cluster.head_node}
    try:
        for index in range(1, NODES):
            nodes[index] = cluster.add_node(wait=True, **node_args(root, index))
        env = {key: value for key, value in os.environ.items() if not key.startswith("ORDER_SERVICE_")}
        env.update(RAY_ADDRESS=cluster.address, ORDER_SERVICE_DATA_DIR=str(root / "node0"),
                   ORDER_SERVICE_ADMIN_TOKEN=token, ORDER_SERVICE_SHARDS=str(NODES),
                   ORDER_SERVICE_BOOK_ACTORS=str(NODES))
        print(order_service("actors", env=env).stdout, flush=True)
        subprocess.run([sys.executable, str(HERE / "http_bench.py"), "--ray-address", cluster.address,
                        "--admin-token", token, "--shards", str(NODES), "--book-actors", str(NODES),
                        "--phases", "single,batch", "--workers", str(arguments.workers),
                        "--repeats", str(arguments.repeats), "--duration", str(arguments.duration)],
                       check=True, env={key: value for key, value in os.environ.items()
                                        if not key.startswith("ORDER_SERVICE_")})

        ray.init(address=cluster.address, namespace="order-service", log_to_driver=False)
        from actors.remote import placement

        config = ServiceConfig(data_dir=root / "node0", shard_count=NODES, book_actor_count=NODES)
        journals = root / f"node{NODES - 1}" / "journals"
        size = sum(path.stat().st_blocks * 512 for path in journals.rglob("*") if path.is_file())
        cluster.remove_node(nodes.pop(NODES - 1), allow_graceful=False)
        lost = {f"shard-{NODES - 1}", f"book-{NODES - 1}"}
        while any(row["state"] == "ALIVE" for row in placement(config) if row["stream"] in lost):
            time.sleep(POLL_SECONDS)  # polls the GCS: Ray offers no event for an actor's state here
        added = time.monotonic()
        nodes[NODES - 1] = cluster.add_node(wait=True, **node_args(root, NODES - 1))
        joined = time.monotonic()
        while not all(row["state"] == "ALIVE" for row in placement(config)):
            time.sleep(POLL_SECONDS)
        up = time.monotonic()
        print(f"\nnode {NODES - 1} back: raylet up in {joined - added:.2f}s, its actors (journals "
              f"{size / 2**20:.1f} MiB on disk) up {up - joined:.2f}s later, {up - added:.2f}s in all")
        ray.shutdown()
    finally:
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
