"""The one place where actor classes become Ray actors, and where Ray starts.

Actors are named in one namespace and detached from the process that made
them, so any gateway process finds the same actors (`get_if_exists`). They
reserve no CPU (`num_cpus=0`) so that they fit a 2-core machine, Ray restarts
one that dies (`max_restarts=-1`), and a call in flight when it died fails to
its caller, who retries it idempotently (`max_task_retries=0`). Ray does not
record their calls as task events (`enable_task_events=False`, as Ray Serve
does for its replicas): the GCS keeps up to 100,000 such records, ~4 KB each,
which the soak saw as gcs_server growing by ~0.75 MiB/s under steady load.

A local Ray started here is the gateway's to stop. Its processes (gcs_server,
raylet, the actors' workers) start with SIGTERM and SIGINT blocked, as Ray
itself already starts them with SIGINT blocked: a stop signal sent to the
whole process group, or to every process of a systemd unit, then reaches only
the gateway, which flushes the journals through the actors, stops them and
then Ray. SIGKILL is not blocked, so `kill -9` of the group is still a crash.

Placement. Every actor is created with a `label_selector` naming its stream
(`order-service/shard-1: "true"`, ServiceConfig.placement_label), so Ray starts
and restarts it only on a node that carries that label, the node whose disk
holds its journal; while no live node does, it stays pending (RESTARTING)
rather than starting empty elsewhere. A local Ray started for a service labels
its one node with every stream of the layout. An actor opens its journal under
its node's own data directory: `ORDER_SERVICE_DATA_DIR` in the environment its
raylet was started with (`ray start`), else the one in the configuration it was
given, and records the layout there too (a node's journals are never read with
another layout). The layout and the admin token's hash are recorded in the
cluster itself (Ray's internal key-value store, per namespace), so every
gateway, on any machine, routes alike and refuses to run with a different one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import signal
from contextlib import contextmanager
from pathlib import Path

import ray

from actors.book_actor import AssetBookActor
from actors.config import ServiceConfig, check_layout
from actors.registry_actor import RegistryActor
from actors.shard_actor import AccountShardActor

_ACTOR_OPTIONS = dict(num_cpus=0, max_restarts=-1, max_task_retries=0, lifetime="detached",
                      max_concurrency=10_000, enable_task_events=False)

# The value of every placement label: a node holds a stream's journal or does not carry its label.
PLACED = "true"
NODE_DATA_DIR_ENV = "ORDER_SERVICE_DATA_DIR"
# Set when this process started a local Ray without labels (a test's or a benchmark's Ray,
# one node, no layout known): its actors are created without a label selector.
_unlabelled_local_ray = False


class LayoutMismatch(RuntimeError):
    """The cluster was set up for another layout or admin token than this process's."""


def node_config(config: ServiceConfig) -> ServiceConfig:
    """This node's view of a configuration: its journals under the node's own data directory."""
    own = os.environ.get(NODE_DATA_DIR_ENV)
    if own:
        config = dataclasses.replace(config, data_dir=Path(own).resolve())
    check_layout(config)
    return config


def _on_its_node(actor_class: type) -> type:
    """The actor class, opening its journal under its node's data directory (`node_config`).

    Same name as the class it extends: Ray titles its worker `ray::<class>`, which operators
    and the chaos tests look for."""

    def __init__(self, config: ServiceConfig, *args, **kwargs) -> None:
        actor_class.__init__(self, node_config(config), *args, **kwargs)

    return type(actor_class.__name__, (actor_class,),
                {"__init__": __init__, "__doc__": actor_class.__doc__, "__module__": __name__})


RemoteRegistry = ray.remote(_on_its_node(RegistryActor))
RemoteShard = ray.remote(_on_its_node(AccountShardActor))
RemoteBook = ray.remote(_on_its_node(AssetBookActor))


def prepare_ray_auth(data_dir: Path) -> None:
    """Keep Ray's cluster token inside the data directory instead of the home directory."""
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return
    path = Path(data_dir).resolve() / "ray_auth_token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as token_file:
            token_file.write(secrets.token_hex(32))
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(path)


def local_labels(config: ServiceConfig) -> dict[str, str]:
    """The labels of a node that holds every journal of the service (a local Ray's one node)."""
    return {config.placement_label(stream): PLACED for stream in config.streams()}


def start_ray(data_dir: Path, namespace: str, num_cpus: int | None = None,
              labels: dict[str, str] | None = None) -> None:
    """Join RAY_ADDRESS if set, else start a local Ray whose files stay under the data directory.

    `labels` are the local node's (see `local_labels`); without them the actors this process
    creates are placed anywhere on its one node."""
    global _unlabelled_local_ray
    if ray.is_initialized():
        return
    prepare_ray_auth(data_dir)
    options = dict(namespace=namespace, include_dashboard=False, log_to_driver=False,
                   configure_logging=False)
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], **options)
    else:
        # Ray starts workers at nice 15, below the gateway: under load the actors that hold
        # every order would then wait behind the HTTP front. They serve at normal priority.
        os.environ.setdefault("RAY_worker_niceness", "0")
        _unlabelled_local_ray = not labels
        # address="local": a new Ray even when another on this machine (`ray start`, a test's
        # cluster) has written its address where a bare ray.init() would find and join it.
        with _stop_signals_blocked():
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 2, labels=labels or None,
                     **options)


def gcs_address() -> str:
    """The address other processes join this process's Ray at."""
    return ray.get_runtime_context().gcs_address


@contextmanager
def _stop_signals_blocked():
    """Block SIGTERM and SIGINT in this thread meanwhile: processes started here inherit the mask.

    A signal that arrives meanwhile stays pending and is delivered when the block ends.
    """
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def create_actors(config: ServiceConfig) -> tuple:
    """Create the service's actors, or find them if they exist; return (registry, shards, books)."""
    def options(stream: str) -> dict:
        placement = {} if _unlabelled_local_ray else {
            "label_selector": {config.placement_label(stream): PLACED}}
        return dict(name=config.actor_name(stream), namespace=config.namespace, get_if_exists=True,
                    **placement, **_ACTOR_OPTIONS)

    books = [RemoteBook.options(**options(f"book-{index}")).remote(config, index)
             for index in range(config.book_actor_count)]
    shards = [RemoteShard.options(**options(f"shard-{index}")).remote(config, index)
              for index in range(config.shard_count)]
    registry = RemoteRegistry.options(**options("registry")).remote(config)
    return registry, shards, books


def kill_actors(config: ServiceConfig) -> None:
    """Stop every actor of this service for good (no restart); journals stay on disk."""
    for stream in config.streams():
        try:
            ray.kill(ray.get_actor(config.actor_name(stream), namespace=config.namespace), no_restart=True)
        except ValueError:
            pass


def _record_once(namespace: str, name: str, value: str) -> str:
    """Record a value in the cluster unless one is recorded already; return the recorded one."""
    from ray.experimental import internal_kv

    key = f"{namespace}:{name}".encode()
    internal_kv._internal_kv_put(key, value.encode(), overwrite=False, namespace=b"order-service")
    return internal_kv._internal_kv_get(key, namespace=b"order-service").decode()


def recorded_cluster_layout(namespace: str) -> dict[str, int]:
    """The layout the cluster was set up with for a namespace ({} when none is recorded)."""
    from ray.experimental import internal_kv

    value = internal_kv._internal_kv_get(f"{namespace}:layout".encode(), namespace=b"order-service")
    return json.loads(value) if value else {}


def record_in_cluster(config: ServiceConfig, admin_token: str | None) -> None:
    """Record the layout (and the admin token's hash) in the cluster, or refuse different ones.

    The first process to set up a namespace records them; every later one, on any machine,
    must bring the same, or it would route users to other shards, or answer other tokens."""
    layout = json.dumps(config.layout(), sort_keys=True)
    recorded = _record_once(config.namespace, "layout", layout)
    if recorded != layout:
        raise LayoutMismatch(
            f"the Ray cluster's actors for namespace {config.namespace!r} were set up with {recorded}; "
            f"this configuration asks for {layout}: set ORDER_SERVICE_SHARDS and ORDER_SERVICE_BOOK_ACTORS "
            f"to the cluster's counts (or leave them unset), or use another ORDER_SERVICE_NAMESPACE")
    if admin_token is not None:
        token_hash = hashlib.sha256(admin_token.encode()).hexdigest()
        if _record_once(config.namespace, "admin_token_sha256", token_hash) != token_hash:
            raise LayoutMismatch(
                f"the Ray cluster's service in namespace {config.namespace!r} has another admin token: "
                f"give every gateway the same ORDER_SERVICE_ADMIN_TOKEN")


def placement(config: ServiceConfig) -> list[dict]:
    """Where each actor of the service is: its state, its node, and the live nodes labelled for it.

    Asks the GCS (a blocking call: from an event loop, run it in a thread)."""
    from ray._private import state

    nodes = {node["NodeID"]: node for node in ray.nodes()}
    by_name: dict[str, dict] = {}
    for actor in state.actors().values():
        # A name is reused by an actor killed and created again; the one not DEAD is current.
        if actor["Name"] and (actor["Name"] not in by_name or actor["State"] != "DEAD"):
            by_name[actor["Name"]] = actor
    rows = []
    for stream in config.streams():
        label = config.placement_label(stream)
        actor = by_name.get(config.actor_name(stream))
        alive = actor is not None and actor["State"] == "ALIVE"
        node = nodes.get(actor["Address"]["NodeID"]) if alive else None
        rows.append({
            "stream": stream, "label": label, "state": actor["State"] if actor else "NOT_CREATED",
            "node_id": node["NodeID"] if node else None,
            "node_address": node["NodeManagerAddress"] if node else None,
            "labelled_nodes": [node_id for node_id, candidate in nodes.items()
                               if candidate["Alive"] and candidate.get("Labels", {}).get(label) == PLACED],
        })
    return rows
