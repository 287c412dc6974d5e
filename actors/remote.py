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
"""

from __future__ import annotations

import os
import secrets
import signal
from contextlib import contextmanager
from pathlib import Path

import ray

from actors.book_actor import AssetBookActor
from actors.config import ServiceConfig
from actors.registry_actor import RegistryActor
from actors.shard_actor import AccountShardActor

_ACTOR_OPTIONS = dict(num_cpus=0, max_restarts=-1, max_task_retries=0, lifetime="detached",
                      max_concurrency=10_000, enable_task_events=False)

RemoteRegistry = ray.remote(RegistryActor)
RemoteShard = ray.remote(AccountShardActor)
RemoteBook = ray.remote(AssetBookActor)


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


def start_ray(data_dir: Path, namespace: str, num_cpus: int | None = None) -> None:
    """Join RAY_ADDRESS if set, else start a local Ray whose files stay under the data directory."""
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
        with _stop_signals_blocked():
            # address="local": always a new Ray, never one that another service on this machine runs.
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 2, **options)


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
        return dict(name=config.actor_name(stream), namespace=config.namespace, get_if_exists=True,
                    **_ACTOR_OPTIONS)

    books = [RemoteBook.options(**options(f"book-{index}")).remote(config, index)
             for index in range(config.book_actor_count)]
    shards = [RemoteShard.options(**options(f"shard-{index}")).remote(config, index)
              for index in range(config.shard_count)]
    registry = RemoteRegistry.options(**options("registry")).remote(config)
    return registry, shards, books


def kill_actors(config: ServiceConfig) -> None:
    """Stop every actor of this service for good (no restart); journals stay on disk."""
    for stream in ["registry", *(f"shard-{i}" for i in range(config.shard_count)),
                   *(f"book-{i}" for i in range(config.book_actor_count))]:
        try:
            ray.kill(ray.get_actor(config.actor_name(stream), namespace=config.namespace), no_restart=True)
        except ValueError:
            pass
