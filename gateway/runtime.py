"""What a gateway process holds while it serves: the actor facade and small caches.

Caches hold asset definitions, which never change once written, and the user
behind an API key hash, which a revocation or a suspension changes: that cache
is kept true by the registry's access changes within a second (gateway/access.py).
A miss asks the registry, so several gateway processes over the same actors stay
correct: a user or an asset created through one process is found by any other at
its first request. Order ids, client order ids and balances live in the account
shard that owns the user, which serializes every request for that user whichever
gateway process sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import time

import psutil
import ray

from actors.config import ServiceConfig
from actors.remote import PLACED, kill_actors, placement
from actors.retry import call_with_retry
from engine import AssetSpec
from gateway.away import AwayAwareClient
from gateway.access import KeyCache, KeyOwner
from gateway.errors import configure_rate_limits
from gateway.metrics import GatewayMetrics
from gateway.settings import Settings
from gateway.workers import GatewayWorkers

log = logging.getLogger(__name__)

# Bounds on the steps of a stop, which must end well within a supervisor's stop timeout.
FLUSH_TIMEOUT_SECONDS = 5.0
KILL_WAIT_SECONDS = 2.0
# How long the main gateway process waits for its children to stop (each flushes and leaves).
WORKERS_STOP_SECONDS = 5.0
# How long a look at where the actors are serves the health probes.
PLACEMENT_CACHE_SECONDS = 1.0


def hash_key(token: str) -> str:
    """Hash an API key for storage and lookup (the keys are long and random)."""
    return hashlib.sha256(token.encode()).hexdigest()


class Runtime:
    """The running service as the routes see it."""

    def __init__(self, settings: Settings, admin_token: str, owns_ray: bool, config: ServiceConfig | None = None,
                 workers: GatewayWorkers | None = None, serve_when_ready: bool = False) -> None:
        self.settings = settings
        self.admin_token = admin_token
        self.owns_ray = owns_ray
        self.config = config or settings.service_config()
        # The extra gateway processes this one started, stopped before the actors are.
        self.workers = workers
        # An extra gateway process takes no connection before it has recovered: the port is
        # shared, and the kernel would hand it requests it could only answer with 503.
        self.serve_when_ready = serve_when_ready
        self._placement: tuple[float, dict[str, str]] | None = None
        self._placement_watch: asyncio.Task | None = None
        self.metrics = GatewayMetrics(enabled=settings.metrics)
        self.client: AwayAwareClient | None = None
        self.ready = False
        self.started_at = time.monotonic()
        self.recovery_seconds: float | None = None
        self.failure: str | None = None
        self._specs: dict[str, AssetSpec] = {}
        self.keys: KeyCache | None = None
        # Told of revoked keys (a hash; None: any key may be gone) and suspended users: the streams.
        self.access_listeners: list = []
        self._recovery: asyncio.Task | None = None
        configure_rate_limits(settings.order_rate)

    async def start(self) -> None:
        """Create or find the actors and recover them in the background."""
        self.client = AwayAwareClient(self.config, self.metrics.call_times)
        self.keys = KeyCache(self.client, self._key_revoked, self._user_suspended)
        self._recovery = asyncio.get_running_loop().create_task(self._recover())
        if self.serve_when_ready:
            await asyncio.shield(self._recovery)

    async def _recover(self) -> None:
        started = time.monotonic()
        try:
            await self._wait_for_actors()
            await self.refresh_assets()
            self.keys.start()
        except Exception as error:  # readiness stays false and /health says why
            self.failure = f"{type(error).__name__}: {error}"
            log.exception("recovery failed")
            return
        self.recovery_seconds = time.monotonic() - started
        self.metrics.set_recovery(self.recovery_seconds)
        # What is alive now (the modules, Ray's driver, the app) lives as long as the process.
        # Frozen, it is left out of the collector's full passes, which otherwise scan it all
        # again every few seconds under load and stall every request in flight.
        gc.collect()
        gc.freeze()
        self._placement_watch = asyncio.get_running_loop().create_task(self._watch_placement())
        self.ready = True
        log.info("recovered and ready in %.2fs", self.recovery_seconds)

    async def _wait_for_actors(self) -> None:
        """Wait until every actor that has a node has recovered (books, shards, then the registry).

        An actor whose node is gone (no live node carries its label) is left out: /health/ready
        names it, and a gateway started while a node is away serves every other account and
        asset meanwhile, as the gateways already running do."""
        rows = await asyncio.to_thread(placement, self.config)
        placed_by_label = any(row["labelled_nodes"] for row in rows)
        away = {row["stream"] for row in rows if row["state"] != "ALIVE" and not row["labelled_nodes"]}
        if not (placed_by_label and away):
            await self.client.wait_ready()
            return
        log.warning("not waiting for %s: no live node carries their labels", ", ".join(sorted(away)))
        self.client.note_away(away)
        actors = [(name, actor) for name, actor in self.client.actors() if name not in away]
        for kind in ("book-", "shard-", "registry"):
            await asyncio.gather(*(call_with_retry(actor.ready.remote, lambda: None)
                                   for name, actor in actors if name.startswith(kind)))

    async def refresh_assets(self) -> None:
        for spec in await self.client.assets():
            self._specs[spec.asset_id] = spec

    async def spec(self, asset_id: str) -> AssetSpec | None:
        """Return an asset's definition, asking the registry on a miss."""
        spec = self._specs.get(asset_id)
        if spec is None:
            await self.refresh_assets()
            spec = self._specs.get(asset_id)
        return spec

    def known_specs(self) -> dict[str, AssetSpec]:
        return self._specs

    def remember_asset(self, spec: AssetSpec) -> None:
        self._specs[spec.asset_id] = spec

    def cached_user(self, token: str) -> str | None:
        """The username of a live API key of an active user that this gateway has already
        authenticated (and still trusts), else None."""
        return self.keys.cached(hash_key(token))

    async def authenticate(self, token: str) -> KeyOwner | None:
        """Return the owner of this live API key (suspended or not), or None."""
        return await self.keys.owner(hash_key(token))

    def _key_revoked(self, key_hash: str | None) -> None:
        for listener in self.access_listeners:
            listener.key_revoked(key_hash)

    def _user_suspended(self, username: str) -> None:
        for listener in self.access_listeners:
            listener.user_suspended(username)

    async def actor_tier(self) -> dict[str, str]:
        """Each actor's stream → "ok", or what it waits for (its node, or its recovery)."""
        if self._placement is None or time.monotonic() - self._placement[0] > PLACEMENT_CACHE_SECONDS:
            await self._read_placement()
        return self._placement[1]

    async def _read_placement(self) -> None:
        rows = await asyncio.to_thread(placement, self.config)
        self._placement = (time.monotonic(), {row["stream"]: _actor_state(row) for row in rows})
        # Which actors wait for a node; none when nothing is placed by label (a test's local Ray).
        if any(row["labelled_nodes"] for row in rows):
            self.client.note_away({row["stream"] for row in rows
                                   if row["state"] != "ALIVE" and not row["labelled_nodes"]})

    async def _watch_placement(self) -> None:
        """Read where the actors are once a second, for orders to refuse early (gateway/away.py)."""
        while True:
            try:
                await self._read_placement()
            except Exception:  # Ray's state service busy or restarting: keep the last reading
                log.warning("could not read where the actors are", exc_info=True)
            await asyncio.sleep(PLACEMENT_CACHE_SECONDS)

    async def close(self) -> None:
        """Flush every journal; when this process started Ray, stop the actors and Ray too.

        On someone else's cluster (RAY_ADDRESS) the detached actors serve on and only
        this driver leaves.
        """
        if self._recovery is not None and not self._recovery.done():
            self._recovery.cancel()
        if self._placement_watch is not None:
            self._placement_watch.cancel()
        if self.workers is not None:
            await asyncio.to_thread(self.workers.stop, WORKERS_STOP_SECONDS)
        if self.keys is not None:
            await self.keys.stop()
        flushed = self.client is not None and await self._flush()
        if not self.owns_ray:
            ray.shutdown()
            return
        if flushed:
            # The GCS answered moments ago; asking it with no answer would block for a minute.
            kill_actors(self.config)
        _stop_local_ray()

    async def _flush(self) -> bool:
        try:
            await asyncio.wait_for(self.client.flush(), timeout=FLUSH_TIMEOUT_SECONDS)
        except Exception:
            log.warning("could not flush every journal before stopping", exc_info=True)
            return False
        return True


def _actor_state(row: dict) -> str:
    if row["state"] == "ALIVE":
        return "ok"
    if not row["labelled_nodes"]:
        return f"waiting for a node labelled {row['label']}={PLACED}"
    return f"{row['state'].lower()} on its node"


def _stop_local_ray() -> None:
    """Kill every process of the Ray this process started, wait until they are gone, and leave it.

    Ray's own shutdown asks each process in turn to stop with SIGTERM and waits a
    second for it, but they run with SIGTERM blocked (see actors.remote), and once
    the journals are flushed nothing of theirs needs a graceful end. The GCS goes
    last, with `ray.shutdown`: the driver says goodbye to it, and without it waits
    seconds for time-outs.
    """
    processes = []
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.name() != "gcs_server":
                process.kill()
                processes.append(process)
    deadline = time.monotonic() + KILL_WAIT_SECONDS
    while (alive := [process for process in processes if _running(process)]) and time.monotonic() < deadline:
        psutil.wait_procs(alive, timeout=0.05)
    if alive:
        log.warning("Ray processes still running after SIGKILL: %s", [process.pid for process in alive])
    ray.shutdown()


def _running(process) -> bool:
    """Whether a process still runs: a killed one whose parent has not reaped it yet does not."""

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
